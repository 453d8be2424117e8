"""The objective seam: the model computes a batch's terms once, the objective says what to minimise.

The model (``vae_lab.model.VAEModule``) hands :class:`Terms` to the objective and gets back an
:class:`ObjectiveOutput`: the per-example loss (its mean is what the optimiser minimises; the
vMF gradient correction weighs it per example) and the quantities to log. Reported −ELBO and KL
are always the model's true ones, computed from the terms, whatever the objective trains on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.distributions import Distribution

from vae_lab.latents.base import CapabilityError, LatentFamily
from vae_lab.objectives.schedules import BetaSchedule


@dataclass
class Terms:
    """One batch's quantities, each per example unless noted."""

    q: Distribution  # q(z|x), batch shape (B,)
    p: Distribution  # p(z)
    z: torch.Tensor  # (B, L), the one reparameterised sample
    log_px: torch.Tensor  # log p(x|z), (B,)
    kl: torch.Tensor  # the latent family's true KL(q‖p) (closed form or one-sample estimate), (B,)
    latent: LatentFamily
    px: Distribution | None = None  # p(x|z) at z, the decoded distribution
    _kl_per_dimension: torch.Tensor | None = field(default=None, repr=False)

    def kl_per_dimension(self) -> torch.Tensor:
        """KL(q_d‖p_d) (B, L), closed form; computed on first use."""
        if self._kl_per_dimension is None:
            self._kl_per_dimension = self.latent.kl_per_dimension(self.q, self.p)
        return self._kl_per_dimension


@dataclass
class ObjectiveOutput:
    loss: torch.Tensor  # per example (B,); the training loss is its mean
    logs: dict[str, torch.Tensor | float]  # logged as train/<name>


class Objective:
    """Base of every objective. ``monitor`` names the validation metric checkpoints and early
    stopping follow (``val/<monitor>``); ``requires_kl_per_dimension`` says the objective needs
    the family's closed-form per-dimension KL, checked before training by :meth:`check`;
    ``stochastic`` says z is drawn from q(z|x) and the prior is part of the model — False for a
    deterministic autoencoder, which then has no ELBO, KL, NLL, MI, holes or prior samples."""

    requires_kl_per_dimension = False
    stochastic = True

    def __init__(self, schedule: BetaSchedule | None = None, monitor: str = "neg_elbo"):
        self.schedule = schedule or BetaSchedule()
        self.monitor = monitor

    @property
    def name(self) -> str:
        return type(self).__name__

    def check(self, latent: LatentFamily) -> None:
        """Refuse a latent family that lacks what this objective needs, with the reason."""
        if self.requires_kl_per_dimension and not latent.has_kl_per_dimension:
            raise CapabilityError(
                f"objective {self.name} needs a closed-form per-dimension KL, which latent family "
                f"{latent.name} does not have; use prior=gauss, or objective=elbo"
            )

    def latent_code(self, latent: LatentFamily, q: Distribution) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The z the decoder sees, and what the family's gradient correction needs: a
        reparameterised sample of q by default."""
        return latent.rsample(q)

    def beta(self, step: int, epoch: int, total_steps: int | None) -> float:
        """The weight of the regulariser at this optimiser step (0-based) and epoch (0-based)."""
        return self.schedule(step, epoch, total_steps)

    def __call__(self, terms: Terms, beta: float | torch.Tensor) -> ObjectiveOutput:
        raise NotImplementedError
