"""δ-VAE as the density-gap paper's baseline: every dimension's KL held at or above δ.

KL(N(μ, σ²) ‖ N(0, 1)) = ½(μ² + σ² − ln σ² − 1). σ² is confined to [l, u], the two roots of
ln x − x + 2δ + 1 = 0, where σ² − ln σ² − 1 ≤ 2δ; then μ = sqrt(2δ + 1 + ln σ² − σ² + relu(μ̃))
gives KL_d = δ + relu(μ̃)/2 ≥ δ exactly (Razavi et al. 2019, as parameterised in the
density-gap paper's code: σ = √l + (√u − √l) · sigmoid(raw log-variance)).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vae_lab.latents.gaussian import GaussianLatent


def variance_bounds(delta: float) -> tuple[float, float]:
    """The roots l < 1 < u of g(x) = ln x − x + 2δ + 1, by bisection: g(1) = 2δ > 0, and g falls
    monotonically to −∞ on either side of 1."""

    def g(x: float) -> float:
        return math.log(x) - x + 2 * delta + 1

    def root(inside: float, outside: float) -> float:  # g(inside) > 0 > g(outside)
        for _ in range(200):
            mid = 0.5 * (inside + outside)
            inside, outside = (mid, outside) if g(mid) > 0 else (inside, mid)
        return 0.5 * (inside + outside)

    return root(1.0, 1e-300), root(1.0, 2 * delta + 2 + math.log(2 * delta + 2) + 1)


class DeltaGaussianLatent(GaussianLatent):
    def __init__(self, in_features: int, latent_dim: int, delta: float = 0.15, **gaussian):
        super().__init__(in_features, latent_dim, **gaussian)
        if not delta > 0:
            raise ValueError(f"prior.delta={delta}: the per-dimension KL floor must be > 0")
        self.delta = delta
        low, high = variance_bounds(delta)
        self.std_range = (math.sqrt(low), math.sqrt(high))

    def mean_and_std(self, mean: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low, high = self.std_range
        std = low + (high - low) * torch.sigmoid(logvar)
        var = std * std
        # Clamped at 0: rounding can push the root's own point a hair below.
        mean = torch.sqrt((2 * self.delta + 1 + var.log() - var).clamp(min=0) + F.relu(mean) + 1e-12)
        return mean, std
