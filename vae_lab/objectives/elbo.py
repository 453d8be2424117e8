"""The evidence lower bound with a β schedule, and free bits.

ELBO: loss_i = β · KL(q(z|x_i)‖p(z)) − log p(x_i|z_i), β from the schedule (β = 1: the ELBO;
constant β ≠ 1: the β-VAE; linear warm-up: KL annealing; cyclic: Fu et al. 2019).

Free bits replace the KL by a floor per latent dimension, λ = target / latent:
- ``mode="batch"`` (Kingma et al. 2016): each dimension's batch-averaged KL̄_d becomes
  max(λ, KL̄_d); dimensions below λ get no KL gradient.
- ``mode="example"`` (the density-gap paper's baseline): KL_{i,d} counts only where it exceeds λ,
  example by example.
"""

from __future__ import annotations

import torch

from vae_lab.objectives.base import Objective, ObjectiveOutput, Terms
from vae_lab.objectives.schedules import BetaSchedule

FREE_BITS_MODES = ("batch", "example")


class ELBO(Objective):
    def __init__(
        self,
        beta: float = 1.0,
        warmup: int = 0,
        schedule: str = "linear",
        cycles: int = 4,
        ratio: float = 0.5,
        monitor: str = "neg_elbo",
    ):
        super().__init__(BetaSchedule(schedule, beta, warmup, cycles, ratio), monitor)

    def regulariser(self, terms: Terms) -> torch.Tensor:
        """What β weighs, per example (B,): the KL."""
        return terms.kl

    def logs(self, regulariser: torch.Tensor) -> dict[str, torch.Tensor]:
        """The objective's own quantities besides β (the KL itself is logged by the model)."""
        return {}

    def __call__(self, terms: Terms, beta: float | torch.Tensor) -> ObjectiveOutput:
        regulariser = self.regulariser(terms)
        loss = beta * regulariser - terms.log_px
        return ObjectiveOutput(loss, {"beta": beta} | self.logs(regulariser))


class FreeBitsELBO(ELBO):
    requires_kl_per_dimension = True

    def __init__(self, target: float = 4.0, mode: str = "batch", latent_dim: int | None = None, **elbo):
        super().__init__(**elbo)
        if mode not in FREE_BITS_MODES:
            raise ValueError(f"objective.mode={mode!r}: expected one of {', '.join(FREE_BITS_MODES)}")
        if not target >= 0:
            raise ValueError(f"objective.target={target}: the free-bits target (nats) must be >= 0")
        if latent_dim is None or latent_dim < 1:
            raise ValueError(f"free bits need the latent dimension (got latent_dim={latent_dim})")
        self.target, self.mode = target, mode
        self.floor = target / latent_dim  # λ per dimension

    def regulariser(self, terms: Terms) -> torch.Tensor:
        kl = terms.kl_per_dimension()  # (B, L)
        if self.mode == "batch":
            # The batch mean of where(KL̄_d > λ, KL_{i,d}, λ) is max(λ, KL̄_d), with its gradient.
            kept = torch.where(kl.mean(0) > self.floor, kl, torch.full_like(kl, self.floor))
        else:
            kept = kl * (kl > self.floor)
        return kept.sum(-1)

    def logs(self, regulariser: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"free_bits_kl": regulariser.mean()}
