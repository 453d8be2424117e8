"""Diagonal-Gaussian posterior with a standard-normal prior (Kingma & Welling 2014)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.distributions import Distribution, Independent

from vae_lab.distributions.gaussian_mixture import DiagonalGaussianMixture
from vae_lab.distributions.normal import Normal
from vae_lab.latents.base import LatentFamily, PosteriorFn
from vae_lab.linear import Linear
from vae_lab.rng import draw_for_share, normal_in_chunks


class GaussianLatent(LatentFamily):
    """q(z|x) = N(μ, diag σ²) with log σ² in [−6, 2] (VampPrior code); p(z) = N(0, I)."""

    has_kl_per_dimension = True

    def __init__(
        self,
        in_features: int,
        latent_dim: int,
        min_logvar: float = -6.0,
        max_logvar: float = 2.0,
        init_scale: float = 1.0,
    ):
        super().__init__(in_features, latent_dim)
        self.head = Linear(in_features, 2 * latent_dim)  # μ and log σ² in one matmul
        if init_scale != 1.0:  # 0: every posterior starts at the prior N(0, I) (a collapsed start)
            with torch.no_grad():
                self.head.weight.mul_(init_scale)
                self.head.bias.mul_(init_scale)
        self.logvar_range = (min_logvar, max_logvar)
        self.register_buffer("zero", torch.zeros(latent_dim), persistent=False)

    def posterior(self, h: torch.Tensor) -> Distribution:
        mean, std = self.mean_and_std(*self.head(h).chunk(2, dim=-1))
        return Independent(Normal(mean, std, validate_args=False), 1)

    def mean_and_std(self, mean: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The head's raw outputs -> the posterior's μ and σ (BN-VAE and δ-VAE change this map)."""
        return mean, torch.exp(0.5 * logvar.clamp(*self.logvar_range))

    def rsample(self, q: Distribution) -> tuple[torch.Tensor, None]:
        return self._reparameterise(q, (), batch_dim=0), None

    def rsample_many(self, q: Distribution, n: int) -> torch.Tensor:
        return self._reparameterise(q, (n,), batch_dim=1)

    @staticmethod
    def _reparameterise(q: Distribution, sample_shape: tuple[int, ...], batch_dim: int) -> torch.Tensor:
        """μ + σ ε, with ε drawn for the whole global batch under multi-process training."""
        loc, scale = q.base_dist.loc, q.base_dist.scale
        # normal_ (not randn): torch.compile keeps it on the eager generator, so compiled and
        # eager steps draw the same noise from the same stream.
        noise = draw_for_share(
            lambda shape: torch.empty(shape, dtype=loc.dtype, device=loc.device).normal_(),
            (*sample_shape, *loc.shape),
            batch_dim,
        )
        return loc + scale * noise

    def sample_in_chunks(self, q: Distribution, n: int, chunk_size: int) -> Iterable[torch.Tensor]:
        """``q.sample((n,))`` bit for bit (the same ε from the same stream, and μ + ε σ as torch's
        ``Normal.rsample`` forms it), but formed chunk by chunk and with ε drawn chunk by chunk
        (``normal_in_chunks``): the product and sum stay in cache, and the (n, B, L) noise tensor
        (80 MB at the test's S = 5000) is never allocated, so ``eval.iw_chunk_size`` bounds memory."""
        loc, scale = q.base_dist.loc, q.base_dist.scale
        noise = normal_in_chunks(n, tuple(loc.shape), chunk_size, loc.dtype, loc.device)
        return (loc + eps * scale for eps in noise)

    def prior(self, posterior_fn: PosteriorFn | None = None) -> Distribution:
        return Independent(Normal(self.zero, torch.ones_like(self.zero), validate_args=False), 1)

    def kl(self, q: Distribution, p: Distribution, z: torch.Tensor) -> torch.Tensor:
        """KL(q‖N(0, I)) per example (B,), in closed form."""
        return self.kl_per_dimension(q, p).sum(-1)

    def kl_per_dimension(self, q: Distribution, p: Distribution) -> torch.Tensor:
        """KL(N(μ_d, σ_d²) ‖ N(0, 1)) = ½ (σ_d² + μ_d² − 1 − log σ_d²), (B, L); sums to ``kl``.

        ``p`` is this family's N(0, I) prior. torch's ``kl_divergence`` computes the same
        expression bit for bit (tested), plus a division by the prior's unit scale and a
        subtraction of its zero mean, each with its own pass and backward node.
        """
        variance = q.base_dist.scale.square()
        return 0.5 * (variance + q.base_dist.loc.square() - 1 - variance.log())

    def pairwise_log_density(self, q: Distribution, z: torch.Tensor) -> torch.Tensor:
        """All (n, K) joint densities as one matmul (see ``DiagonalGaussianMixture``)."""
        return DiagonalGaussianMixture(q.base_dist.loc, q.base_dist.scale).component_log_prob(z)

    def posterior_scale(self, q: Distribution) -> torch.Tensor:
        return q.base_dist.scale

    def log_density_factors(self, dist: Distribution, z: torch.Tensor) -> torch.Tensor:
        """Per-dimension log densities (…, L): posterior and prior are products over dimensions."""
        return dist.base_dist.log_prob(z)
