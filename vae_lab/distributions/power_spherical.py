"""The Power Spherical distribution (De Cao & Aziz, 2020) on S^{m−1} ⊂ R^m.

density   p(z | μ, κ) = C(κ, m)⁻¹ (1 + μ·z)^κ,   C(κ, m) = 2^{α+β} π^β Γ(α) / Γ(α+β),
with α = (m−1)/2 + κ and β = (m−1)/2. A vMF-like family whose sampler needs no rejection step
and no Bessel function: t = (1 + μ·z)/2 ~ Beta(α, β) exactly, so rsample is a Beta draw (implicitly
reparameterised through torch's Gamma sampler), a uniform direction and a Householder map.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Distribution, constraints
from torch.distributions.kl import register_kl

from vae_lab.distributions.hyperspherical_uniform import (
    HypersphericalUniform,
    broadcast_concentration,
    log_sphere_surface_area,
    unit_sphere,
)
from vae_lab.distributions.von_mises_fisher import rotate_from_e1

__all__ = ["PowerSpherical"]


class PowerSpherical(Distribution):
    """Power Spherical distribution PS(μ, κ) on S^{m−1} ⊂ R^m.

    Args:
        loc: mean direction μ, unit vectors of shape (..., m), m ≥ 2.
        scale: concentration κ > 0, shape (...) or (..., 1) (stored as ``scale`` of shape (...)).

    Batch shape (...), event shape (m,). ``rsample`` is reparameterised in μ and κ.
    """

    arg_constraints = {"loc": unit_sphere, "scale": constraints.positive}
    support = unit_sphere
    has_rsample = True

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor | float, validate_args: bool | None = None):
        if loc.dim() < 1 or loc.shape[-1] < 2:
            raise ValueError(f"loc has shape {tuple(loc.shape)}: needs vectors of dimension m ≥ 2")
        self.scale = broadcast_concentration(loc, scale)
        self.loc = loc.expand(*self.scale.shape, loc.shape[-1])
        super().__init__(self.scale.shape, loc.shape[-1:], validate_args=validate_args)

    @property
    def dim(self) -> int:
        return self.event_shape[0]

    @property
    def _beta(self) -> float:
        return 0.5 * (self.dim - 1)

    @property
    def _alpha(self) -> torch.Tensor:
        return self._beta + self.scale

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(PowerSpherical, _instance)
        batch_shape = torch.Size(batch_shape)
        new.scale = self.scale.expand(batch_shape)
        new.loc = self.loc.expand(*batch_shape, self.dim)
        super(PowerSpherical, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self) -> torch.Tensor:
        # E[μ·z] = 2 E[t] − 1 = (α − β)/(α + β) = κ / (κ + m − 1)
        return (self.scale / (self.scale + self.dim - 1)).unsqueeze(-1) * self.loc

    @property
    def mode(self) -> torch.Tensor:
        return self.loc

    def _log_normalizer(self) -> torch.Tensor:
        """log C(κ, m) = (α+β) log 2 + β log π + log Γ(α) − log Γ(α+β)."""
        alpha, beta = self._alpha, self._beta
        return (
            (alpha + beta) * math.log(2) + beta * math.log(math.pi) + torch.lgamma(alpha) - torch.lgamma(alpha + beta)
        )

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        cosine = (self.loc * value).sum(-1)
        # (1 + μ·z) can round to 0 at the antipode; the floor keeps log_prob finite there.
        log_one_plus_cosine = torch.log((1 + cosine).clamp_min(torch.finfo(cosine.dtype).tiny))
        return self.scale * log_one_plus_cosine - self._log_normalizer()

    def entropy(self) -> torch.Tensor:
        # E[log(1 + μ·z)] = log 2 + E[log t] = log 2 + ψ(α) − ψ(α+β)
        alpha, beta = self._alpha, self._beta
        expected_log = math.log(2) + torch.digamma(alpha) - torch.digamma(alpha + beta)
        return self._log_normalizer() - self.scale * expected_log

    def rsample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        alpha = self._alpha.expand(shape[:-1])
        # t = X/(X+Y) ~ Beta(α, β), and 1 − t = Y/(X+Y) without cancellation when t ≈ 1.
        x = torch.distributions.Gamma(alpha, torch.ones_like(alpha), validate_args=False).rsample()
        y = torch.distributions.Gamma(
            torch.full_like(alpha, self._beta), torch.ones_like(alpha), validate_args=False
        ).rsample()
        total = x + y
        t, one_minus_t = x / total, y / total
        w = t - one_minus_t  # 2t − 1
        # √(1 − w²) = 2√(t(1 − t)); the floor keeps the sqrt gradient finite if t rounds to 0 or 1.
        radius = 2 * torch.sqrt((t * one_minus_t).clamp_min(torch.finfo(w.dtype).tiny))
        noise = torch.randn(shape[:-1] + (self.dim - 1,), dtype=w.dtype, device=w.device)
        return rotate_from_e1(self.loc.expand(shape), w, radius, noise)

    def kl_to_uniform(self) -> torch.Tensor:
        """KL(PS ‖ uniform on S^{m−1}) = log|S^{m−1}| − H(PS), one value per batch element."""
        return log_sphere_surface_area(self.dim) - self.entropy()


@register_kl(PowerSpherical, HypersphericalUniform)
def _kl_power_spherical_uniform(p: PowerSpherical, q: HypersphericalUniform) -> torch.Tensor:
    if p.dim != q.dim:
        raise ValueError(f"KL between a Power Spherical on S^{p.dim - 1} and a uniform on S^{q.dim - 1}")
    return p.kl_to_uniform()
