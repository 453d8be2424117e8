"""The aggregate posterior q_agg(z) = (1/N) Σ_k q(z | x_k) of a set of posteriors, in log space.

Written once against :meth:`LatentFamily.log_density_factors`, so it serves every family: per
latent dimension where posterior and prior factorise (Gaussian: q_agg,d is a 1-D mixture), jointly
otherwise (sphere, VampPrior). The density-gap objective and the hole metrics both build on it.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Distribution

from vae_lab.distributions.logsumexp import logsumexp
from vae_lab.latents.base import LatentFamily


def component_log_densities(latent: LatentFamily, q: Distribution, z: torch.Tensor) -> torch.Tensor:
    """log q(z_n | x_k) per factor for every sample and posterior: z (n, L) -> (n, K, F)."""
    return latent.log_density_factors(q, z.unsqueeze(-2))


def log_mixture(component_log_densities: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """log of the equally weighted mixture over the component axis (−2): (n, K, F) -> (n, F).

    ``mask (n, K)``: which components each sample's mixture takes (False: left out; the
    mixture is then over the kept ones).
    """
    if mask is None:
        return logsumexp(component_log_densities, dim=-2) - math.log(component_log_densities.shape[-2])
    masked = component_log_densities.masked_fill(~mask.unsqueeze(-1), -math.inf)
    kept = mask.sum(-1, keepdim=True).to(component_log_densities.dtype)
    return logsumexp(masked, dim=-2) - kept.log()
