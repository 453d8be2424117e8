"""The latent-family interface: posterior, prior and divergence term of a VAE.

A latent family is the only thing that differs between a Gaussian VAE, a VampPrior VAE and a
hyperspherical (vMF) VAE. The model (``vae_lab.model.VAEModule``) calls only the methods below,
so a new family is one file here plus one YAML file in ``conf/prior``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.distributions import Distribution, kl_divergence

# Maps encoder inputs x to the posterior q(z|x). The VampPrior needs it, because its prior is
# the posterior evaluated at learned pseudo-inputs.
PosteriorFn = Callable[[torch.Tensor], Distribution]


class LatentFamily(nn.Module):
    """Turns encoder features ``h (B, H)`` into q(z|x); defines p(z) and the divergence.

    Subclasses implement :meth:`posterior` and :meth:`prior`. Distributions have batch shape
    ``(B,)`` and event shape ``(latent_dim,)`` so ``log_prob`` returns one value per example.
    """

    def __init__(self, in_features: int, latent_dim: int):
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"latent={latent_dim}: the latent dimension must be a positive integer")
        self.in_features = in_features
        self.latent_dim = latent_dim

    def posterior(self, h: torch.Tensor) -> Distribution:
        raise NotImplementedError

    def prior(self, posterior_fn: PosteriorFn) -> Distribution:
        """p(z). ``posterior_fn`` is the model's x -> q(z|x) map (used by the VampPrior)."""
        raise NotImplementedError

    def divergence(self, q: Distribution, p: Distribution, z: torch.Tensor) -> torch.Tensor:
        """KL(q‖p) per example: closed form when registered, else the one-sample estimate."""
        try:
            return kl_divergence(q, p)
        except NotImplementedError:
            return q.log_prob(z) - p.log_prob(z)

    def gradient_correction(self, q: Distribution, sample_loss: torch.Tensor) -> torch.Tensor | None:
        """A zero-valued term whose gradient corrects a biased reparameterisation (vMF), or None.

        ``sample_loss`` is the per-example loss at the sample drawn by the last ``rsample``.
        """
        return None

    def posterior_mean(self, q: Distribution) -> torch.Tensor:
        """Summary used for active units (posterior-mean variance over the data)."""
        return q.mean
