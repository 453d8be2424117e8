"""Equally weighted mixture of K diagonal Gaussians, with the log-density written as one matmul.

log N(z; μ_k, σ_k²) = −½ Σ_l (z_l − μ_kl)² / σ_kl² − ½ Σ_l log σ_kl² − ½ L log 2π. Expanding the
square gives z² · (−½/σ_k²) + z · (μ_k/σ_k²) + c_k, so all N × K component densities are a single
(N, 2L) @ (2L, K) product plus a per-component constant: no (N, K, L) broadcast tensor is built.
The product is ``vae_lab.linear``'s, on the fp32 matmul library this machine runs fastest.
This is the VampPrior's p(z) (Tomczak & Welling 2018), where the (N, K, L) elementwise work
otherwise dominates a training step.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Distribution, constraints

from vae_lab.distributions.logsumexp import logsumexp
from vae_lab.linear import linear

LOG_2PI = math.log(2 * math.pi)


class DiagonalGaussianMixture(Distribution):
    """p(z) = (1/K) Σ_k N(z; loc_k, diag scale_k²); ``loc``, ``scale``: (K, L); event shape (L,)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real_vector
    has_rsample = False

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, validate_args: bool | None = None):
        if loc.dim() != 2 or loc.shape != scale.shape:
            raise ValueError(f"loc {tuple(loc.shape)} and scale {tuple(scale.shape)} must both be (components, latent)")
        self.loc, self.scale = loc, scale
        super().__init__(batch_shape=torch.Size(), event_shape=loc.shape[-1:], validate_args=validate_args)

    @property
    def num_components(self) -> int:
        return self.loc.shape[0]

    @property
    def mean(self) -> torch.Tensor:
        return self.loc.mean(0)

    @property
    def variance(self) -> torch.Tensor:
        # Law of total variance over the uniformly chosen component.
        return (self.scale**2 + self.loc**2).mean(0) - self.mean**2

    def component_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; loc_k, scale_k²) for every component: z (..., L) -> (..., K), via one matmul."""
        lead = z.shape[:-1]
        # At least fp32: expanding the square subtracts terms of size ~L/σ², which bf16 cannot resolve.
        dtype = torch.promote_types(self.loc.dtype, torch.float32)
        with torch.autocast(device_type=z.device.type, enabled=False):
            loc, scale, z = self.loc.to(dtype), self.scale.to(dtype), z.to(dtype)
            # Centring on the components' mean shrinks those terms and so the cancellation error.
            centre = loc.mean(0).detach()
            loc, z = loc - centre, z.reshape(-1, z.shape[-1]) - centre
            precision = scale.pow(-2)  # (K, L)
            weights = torch.cat([-0.5 * precision, loc * precision], dim=1)  # (K, 2L)
            constant = -0.5 * ((loc.pow(2) * precision).sum(1) + 2 * scale.log().sum(1) + z.shape[-1] * LOG_2PI)
            log_probs = linear(torch.cat([z.pow(2), z], dim=1), weights, constant)  # (N, K)
        return log_probs.reshape(*lead, -1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """log (1/K) Σ_k N(value; loc_k, scale_k²) for ``value (..., L)`` -> (...)."""
        if self._validate_args:
            self._validate_sample(value)
        return logsumexp(self.component_log_prob(value), dim=-1) - math.log(self.num_components)

    def sample(self, sample_shape: torch.Size | tuple = ()) -> torch.Tensor:
        """Pick a component uniformly, then draw from it; shape ``sample_shape + (L,)``."""
        shape = torch.Size(sample_shape)
        with torch.no_grad():
            k = torch.randint(self.num_components, shape, device=self.loc.device)
            return self.loc[k] + self.scale[k] * torch.randn(shape + self.event_shape, device=self.loc.device)
