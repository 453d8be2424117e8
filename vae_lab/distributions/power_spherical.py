"""The Power Spherical distribution (De Cao & Aziz, 2020) on S^{m−1} ⊂ R^m.

density   p(z | μ, κ) = C(κ, m)⁻¹ (1 + μ·z)^κ,   C(κ, m) = 2^{α+β} π^β Γ(α) / Γ(α+β),
with α = (m−1)/2 + κ and β = (m−1)/2. A vMF-like family whose sampler needs no rejection step
and no Bessel function: t = (1 + μ·z)/2 ~ Beta(α, β) exactly, so rsample is a Beta draw (implicitly
reparameterised through torch's Gamma sampler), a uniform direction and a Householder map.
"""

from __future__ import annotations

import math

import torch
from torch.distributions.utils import lazy_property

from vae_lab.distributions.spherical import SphericalDistribution

__all__ = ["PowerSpherical"]


class PowerSpherical(SphericalDistribution):
    """Power Spherical distribution PS(μ, κ) on S^{m−1} ⊂ R^m.

    Args:
        loc: mean direction μ, unit vectors of shape (..., m), m ≥ 2.
        scale: concentration κ > 0, shape (...) or (..., 1) (stored as ``scale`` of shape (...)).

    Batch shape (...), event shape (m,). ``rsample`` is reparameterised in μ and κ.
    """

    _batch_shaped_caches = ("_log_normalizer",)

    @property
    def _beta(self) -> float:
        return 0.5 * (self.dim - 1)

    @property
    def _alpha(self) -> torch.Tensor:
        """α = (m−1)/2 + κ, batch shape. Not cached: it is one addition, and one node shared by
        rsample, the normaliser and the entropy would regroup the sums of κ's gradient (training
        stays bit-identical to the implementation before the caches)."""
        return self._beta + self.scale

    @lazy_property
    def _log_normalizer(self) -> torch.Tensor:
        """log C(κ, m) = (α+β) log 2 + β log π + log Γ(α) − log Γ(α+β), batch shape."""
        alpha, beta = self._alpha, self._beta
        return (
            (alpha + beta) * math.log(2) + beta * math.log(math.pi) + torch.lgamma(alpha) - torch.lgamma(alpha + beta)
        )

    @property
    def mean(self) -> torch.Tensor:
        # E[μ·z] = 2 E[t] − 1 = (α − β)/(α + β) = κ / (κ + m − 1)
        return (self.scale / (self.scale + self.dim - 1)).unsqueeze(-1) * self.loc

    def _log_prob_of_cosine(self, cosine: torch.Tensor) -> torch.Tensor:
        # (1 + μ·z) can round to 0 at the antipode; the floor keeps log_prob finite there.
        log_one_plus_cosine = torch.log((1 + cosine).clamp_min(torch.finfo(cosine.dtype).tiny))
        return self.scale * log_one_plus_cosine - self._log_normalizer

    def entropy(self) -> torch.Tensor:
        # E[log(1 + μ·z)] = log 2 + E[log t] = log 2 + ψ(α) − ψ(α+β)
        alpha, beta = self._alpha, self._beta
        expected_log = math.log(2) + torch.digamma(alpha) - torch.digamma(alpha + beta)
        return self._log_normalizer - self.scale * expected_log

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
        return self._place_cosine(shape, w, radius)
