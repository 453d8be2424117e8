"""The deterministic autoencoder on the same networks (Dai, Wang & Wipf 2020's comparison).

z = the encoder's posterior mean (its mean direction on the sphere), loss = −log p(x|z): the
reconstruction alone, no KL and no sampling. With the Gaussian likelihood and a learned γ this is
the squared error up to γ's own terms. The model then reports only what exists for it
(reconstruction, per-dimension MSE, active units of z): ``stochastic = False``.
"""

from __future__ import annotations

import torch
from torch.distributions import Distribution

from vae_lab.latents.base import LatentFamily
from vae_lab.objectives.base import Objective, ObjectiveOutput, Terms


class Autoencoder(Objective):
    stochastic = False

    def __init__(self, monitor: str = "recon"):
        super().__init__(monitor=monitor)

    def latent_code(self, latent: LatentFamily, q: Distribution) -> tuple[torch.Tensor, None]:
        return latent.posterior_mean(q), None

    def __call__(self, terms: Terms, beta: float | torch.Tensor) -> ObjectiveOutput:
        return ObjectiveOutput(-terms.log_px, {})
