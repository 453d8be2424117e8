"""Hyperspherical latents: q(z|x) on the unit sphere S^{m−1} ⊂ R^m, uniform prior.

- von Mises-Fisher with learned κ (S-VAE, Davidson et al. 2018): κ = softplus(Linear(h)) + floor.
- von Mises-Fisher with fixed κ (Xu & Durrett 2018): no κ head; the KL is a constant.
- Power Spherical (De Cao & Aziz 2020): same interface, sampling without rejection.

``latent_dim`` is the ambient dimension m, so the sphere is S^{m−1}.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import Distribution

from vae_lab.distributions.hyperspherical_uniform import HypersphericalUniform
from vae_lab.distributions.power_spherical import PowerSpherical
from vae_lab.distributions.von_mises_fisher import VonMisesFisher
from vae_lab.latents.base import LatentFamily, PosteriorFn
from vae_lab.linear import Linear


def _full_precision(t: torch.Tensor):
    return torch.autocast(t.device.type, enabled=False)


class SphericalLatent(LatentFamily):
    """Mean direction μ = normalise(Linear(h)); concentration learned or fixed."""

    has_density = True  # q and the uniform prior both have log_prob
    has_kl_per_dimension = False  # the sphere does not factorise over coordinates
    can_sample_prior = True  # the uniform prior samples exactly
    lives_on_sphere = True
    posterior_density_compiles = False  # Bessel functions: compile time for little gain

    def __init__(self, in_features: int, latent_dim: int, kappa: float | None = None, kappa_floor: float = 1.0):
        name = type(self).__name__
        if latent_dim < 2:
            raise ValueError(
                f"latent={latent_dim}: {name} lives on the sphere S^(latent-1) in R^latent and needs latent >= 2"
            )
        if kappa is not None and not kappa > 0:
            raise ValueError(f"prior.kappa={kappa}: a fixed concentration must be > 0 (or null to learn it)")
        if kappa_floor < 0:
            raise ValueError(f"prior.kappa_floor={kappa_floor}: must be >= 0")
        super().__init__(in_features, latent_dim)
        self.loc_head = Linear(in_features, latent_dim)
        self.kappa_head = Linear(in_features, 1) if kappa is None else None
        self.fixed_kappa, self.kappa_floor = kappa, kappa_floor

    def concentration(self, h: torch.Tensor) -> torch.Tensor:  # (B,)
        if self.kappa_head is None:
            return torch.full(h.shape[:-1], float(self.fixed_kappa), device=h.device, dtype=h.dtype)
        return F.softplus(self.kappa_head(h)).squeeze(-1) + self.kappa_floor

    def distribution(self, loc: torch.Tensor, kappa: torch.Tensor) -> Distribution:
        raise NotImplementedError

    # The samplers (Beta/Gamma draws, rejection loops) and the Bessel-function KL run in fp32 even
    # under bf16 autocast (trainer.precision=bf16-mixed/auto): the CPU has no bf16 Gamma sampler,
    # and bf16 cannot resolve log I_v(κ). Only these small (B, m) computations stay fp32.
    def posterior(self, h: torch.Tensor) -> Distribution:
        with _full_precision(h):
            h = h.float()
            loc = F.normalize(self.loc_head(h), dim=-1)
            return self.distribution(loc, self.concentration(h))

    def rsample(self, q: Distribution) -> tuple[torch.Tensor, torch.Tensor | None]:
        with _full_precision(q.loc):
            return self.draw(q)

    def rsample_many(self, q: Distribution, n: int) -> torch.Tensor:
        with _full_precision(q.loc):
            return q.rsample((n,))

    def draw(self, q: Distribution) -> tuple[torch.Tensor, torch.Tensor | None]:
        """z and what the gradient correction needs (see LatentFamily.rsample), in fp32."""
        return q.rsample(), None

    def kl(self, q: Distribution, p: Distribution, z: torch.Tensor) -> torch.Tensor:
        with _full_precision(z):
            return super().kl(q, p, z)

    def pairwise_log_density(self, q: Distribution, z: torch.Tensor) -> torch.Tensor:
        return q.pairwise_log_prob(z)

    def posterior_mean(self, q: Distribution) -> torch.Tensor:
        """The mean direction μ: active units of a sphere count the directions that vary."""
        return q.loc

    def prior(self, posterior_fn: PosteriorFn | None = None) -> Distribution:
        weight = self.loc_head.weight
        return HypersphericalUniform(self.latent_dim, device=weight.device, dtype=weight.dtype)


class VonMisesFisherLatent(SphericalLatent):
    """vMF posterior sampled by Wood's rejection sampler; optional gradient correction term.

    With ``grad_correction`` and a learned κ, :meth:`rsample` also returns the sample's log
    weight and :meth:`gradient_correction` turns it into the zero-valued term that makes the
    κ gradient unbiased. With a fixed κ there is nothing to correct.
    """

    def __init__(
        self,
        in_features: int,
        latent_dim: int,
        kappa: float | None = None,
        kappa_floor: float = 1.0,
        grad_correction: bool = False,
    ):
        super().__init__(in_features, latent_dim, kappa, kappa_floor)
        self.grad_correction = grad_correction

    def distribution(self, loc: torch.Tensor, kappa: torch.Tensor) -> Distribution:
        return VonMisesFisher(loc, kappa)

    def draw(self, q: VonMisesFisher) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(z, log weight) when the κ gradient is corrected (learned κ), else (z, None)."""
        if self.grad_correction and self.kappa_head is not None:
            return q.rsample_with_log_weight()
        return q.rsample(), None

    def gradient_correction(
        self, q: VonMisesFisher, sample_info: torch.Tensor | None, sample_loss: torch.Tensor
    ) -> torch.Tensor | None:
        """The surrogate of :meth:`VonMisesFisher.grad_correction_surrogate`, or None when off."""
        if sample_info is None:
            return None
        return q.grad_correction_surrogate(sample_loss, sample_info)


class PowerSphericalLatent(SphericalLatent):
    def distribution(self, loc: torch.Tensor, kappa: torch.Tensor) -> Distribution:
        return PowerSpherical(loc, kappa)
