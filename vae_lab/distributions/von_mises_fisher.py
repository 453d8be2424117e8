"""The von Mises-Fisher distribution on S^{m−1} ⊂ R^m, robust in float32 and on any device.

density   q(z | μ, κ) = C_m(κ) exp(κ μ·z),   C_m(κ) = κ^ν / ((2π)^{ν+1} I_ν(κ)),   ν = m/2 − 1.

We write log C_m(κ) = −log ρ_ν(κ) − log|S^{m−1}| with ρ_ν(κ) = Γ(ν+1)(2/κ)^ν I_ν(κ) ≥ 1
(see ``bessel.py``): the huge ν·log κ and log Γ terms cancel analytically, so log-prob, entropy
and KL(vMF ‖ uniform) = κ A_m(κ) − log ρ_ν(κ) stay finite and accurate for κ from 1e-3 to 1e5 and
m up to 1000+, where public code returns NaN/inf (scipy ``ive`` underflow, ``iv`` overflow).

Sampling draws w = μ·z, then z = (w, √(1−w²) v) with v uniform on S^{m−2}, reflected so that e₁
goes to μ. For m = 3, w has an exact inverse CDF. Otherwise Wood's (1994) rejection sampler is
used, see :class:`WoodSampler`. Every step is written in terms of 1 − w, which is what carries the
information when κ is large (w is within 1e-5 of 1 at κ = 1e5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.distributions.utils import lazy_property

from vae_lab.distributions.bessel import bessel_iv_ratio, log_bessel_iv_normalized
from vae_lab.distributions.hyperspherical_uniform import log_sphere_surface_area
from vae_lab.distributions.spherical import SphericalDistribution

__all__ = ["VonMisesFisher", "WoodSampler", "wood_b"]


def wood_b(kappa: torch.Tensor, dim: int) -> torch.Tensor:
    """Wood's envelope parameter b = (−2κ + √(4κ² + (m−1)²)) / (m−1), cancellation-free.

    The textbook form subtracts two numbers ≈ 2κ: in float32 at m = 11, κ = 1e4 it returns a
    b that is mostly rounding error, and the acceptance rate collapses. Multiplying by the
    conjugate gives the same value with only additions: b = (m−1) / (2κ + √(4κ² + (m−1)²)).
    """
    m1 = dim - 1.0
    return m1 / (2 * kappa + torch.hypot(2 * kappa, torch.full_like(kappa, m1)))


def _log_acceptance_ratio(eps: torch.Tensor, kappa: torch.Tensor, b: torch.Tensor, dim: int) -> torch.Tensor:
    """log of target/envelope for proposal ε ~ Beta((m−1)/2, (m−1)/2); ≤ 0, accept if ≥ log U.

    Wood's test κw + (m−1) log(1 − x₀w) − c ≥ log U, with x₀ = (1−b)/(1+b) and
    c = κx₀ + (m−1) log(1 − x₀²), simplifies exactly (using D = 1 − (1−b)ε, 1 − w = 2bε/D) to
    2bκ (1/(1+b) − ε/D) + (m−1) (log((1+b)/2) − log D), free of the 1 − x₀w cancellation.
    """
    d = 1 - (1 - b) * eps
    return 2 * b * kappa * (1 / (1 + b) - eps / d) + (dim - 1) * (torch.log1p(b) - torch.log(2 * d))


@dataclass(frozen=True)
class WoodSampler:
    """Vectorised rejection sampling of Wood's ε for every row of a batch.

    Round 1 draws ``first_block`` proposals for every row, with no host synchronisation.
    Later rounds are the fallback for rows not yet accepted: they gather those rows only and
    draw ``growth`` times more proposals per row than the round before (capped at
    ``max_block``), so the expected work stays ≈ 1/acceptance proposals per row (Wood's
    acceptance rate is ≥ 0.65 for every m and κ) while a row left unaccepted becomes
    vanishingly unlikely: after ``max_rounds`` rounds it would take a probability below
    0.35^(1+4+16+64·(max_rounds−3)). Every round is exact rejection sampling, so the output
    distribution does not depend on these settings, and no row ever keeps a placeholder w;
    a row never accepted (only possible for non-finite κ) raises an error instead.
    """

    first_block: int = 1
    growth: int = 4
    max_block: int = 64
    max_rounds: int = 12

    def sample_eps(self, kappa: torch.Tensor, b: torch.Tensor, dim: int) -> torch.Tensor:
        """Accepted ε (no gradient), shape of ``kappa``; ``b`` = wood_b(kappa, dim)."""
        shape = kappa.shape
        kappa, b = kappa.detach().flatten(), b.detach().flatten()
        eps, accepted = self._draw(kappa, b, dim, self.first_block)
        block = self.first_block
        for _ in range(self.max_rounds - 1):
            pending = torch.nonzero(~accepted).squeeze(-1)  # host synchronisation, once per round
            if pending.numel() == 0:
                break
            block = min(block * self.growth, self.max_block)
            new_eps, new_ok = self._draw(kappa[pending], b[pending], dim, block)
            eps[pending] = new_eps
            accepted[pending] = new_ok
        else:
            if not bool(accepted.all()):
                raise RuntimeError(
                    f"vMF rejection sampler: {int((~accepted).sum())} rows never accepted a "
                    "proposal; is κ finite and positive?"
                )
        return eps.view(shape)

    @staticmethod
    def _draw(kappa, b, dim, block) -> tuple[torch.Tensor, torch.Tensor]:
        """``block`` proposals per row → (first accepted ε, whether any was accepted)."""
        shape = (*kappa.shape, block)
        concentration = torch.full((), 0.5 * (dim - 1), dtype=kappa.dtype, device=kappa.device)
        gamma = torch.distributions.Gamma(concentration, torch.ones_like(concentration), validate_args=False)
        x, y = gamma.sample(shape), gamma.sample(shape)
        eps = x / (x + y)  # Beta((m−1)/2, (m−1)/2)
        log_u = torch.log(torch.rand(shape, dtype=kappa.dtype, device=kappa.device))
        ok = _log_acceptance_ratio(eps, kappa.unsqueeze(-1), b.unsqueeze(-1), dim) >= log_u
        if block == 1:
            return eps.squeeze(-1), ok.squeeze(-1)
        first = ok.to(torch.uint8).argmax(-1, keepdim=True)  # argmax returns the first maximum
        return eps.gather(-1, first).squeeze(-1), ok.any(-1)


class VonMisesFisher(SphericalDistribution):
    """von Mises-Fisher distribution vMF(μ, κ) on S^{m−1} ⊂ R^m.

    Args:
        loc: mean direction μ, unit vectors of shape (..., m), m ≥ 2.
        scale: concentration κ > 0, shape (...) or (..., 1) (stored as ``scale`` of shape (...)).

    Batch shape (...), event shape (m,). ``rsample`` is reparameterised in μ and κ; for m ≠ 3 its
    gradient in κ flows through the accepted sample only, as in public S-VAE code, which is
    biased. The unbiased gradient (Naesseth et al. 2017) adds a correction term:
    :meth:`rsample_with_log_weight` returns the log weight it needs beside the sample, and
    :meth:`grad_correction_surrogate` turns the two into a zero-valued term to add to the loss.
    The distribution keeps no state from one sample to the next.
    """

    sampler = WoodSampler()
    _batch_shaped_caches = ("_log_rho", "mean_resultant_length")

    @property
    def _order(self) -> float:
        """ν = m/2 − 1, the order of the Bessel function in the normaliser."""
        return self.dim / 2 - 1

    @lazy_property
    def mean_resultant_length(self) -> torch.Tensor:
        """A_m(κ) = E[μ·z] = I_{m/2}(κ) / I_{m/2−1}(κ), batch shape."""
        return bessel_iv_ratio(self._order, self.scale)

    @lazy_property
    def _log_rho(self) -> torch.Tensor:
        """log ρ_ν(κ), the κ-dependent part of −log C_m(κ) (see ``bessel.py``), batch shape."""
        return log_bessel_iv_normalized(self._order, self.scale)

    @property
    def mean(self) -> torch.Tensor:
        return self.mean_resultant_length.unsqueeze(-1) * self.loc

    def _log_prob_of_cosine(self, cosine: torch.Tensor) -> torch.Tensor:
        return self.scale * cosine - self._log_rho - log_sphere_surface_area(self.dim)

    def entropy(self) -> torch.Tensor:
        return log_sphere_surface_area(self.dim) + self._log_rho - self.scale * self.mean_resultant_length

    def kl_to_uniform(self) -> torch.Tensor:
        """KL(vMF ‖ uniform on S^{m−1}) = κ A_m(κ) − log ρ_ν(κ) ≥ 0, one value per batch element.

        The same as log|S^{m−1}| − H, without cancelling the two (log|S^{m−1}| ≈ −2000 at m = 1001).
        """
        return self.scale * self.mean_resultant_length - self._log_rho

    def rsample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> torch.Tensor:
        """z of shape sample_shape + batch_shape + (m,); the log weight is not computed."""
        return self._rsample(sample_shape, with_log_weight=False)[0]

    def rsample_with_log_weight(
        self, sample_shape: torch.Size | tuple[int, ...] = ()
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, log_weight): the same draw as :meth:`rsample` (same random numbers for a seed), and
        log(q/r) at it (shape sample_shape + batch_shape), the input of
        :meth:`grad_correction_surrogate`. Zeros for m = 3, where sampling is exact.
        """
        return self._rsample(sample_shape, with_log_weight=True)

    def _rsample(
        self, sample_shape: torch.Size | tuple[int, ...], with_log_weight: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        shape = self._extended_shape(sample_shape)
        kappa = self.scale.expand(shape[:-1])
        if self.dim == 3:
            one_minus_w = self._one_minus_w_inverse_cdf(kappa)
            log_weight = torch.zeros_like(kappa) if with_log_weight else None
        else:
            one_minus_w, log_weight = self._one_minus_w_wood(kappa, with_log_weight)
        w = 1 - one_minus_w
        # 1 − w² = (1 − w)(1 + w) without cancellation; the floor keeps the sqrt gradient finite.
        radius = torch.sqrt((one_minus_w * (2 - one_minus_w)).clamp_min(torch.finfo(w.dtype).tiny))
        return self._place_cosine(shape, w, radius), log_weight

    def _one_minus_w_inverse_cdf(self, kappa: torch.Tensor) -> torch.Tensor:
        """m = 3: F(w) ∝ e^{κw} − e^{−κ} inverts to 1 − w = −log1p(r·expm1(−2κ))/κ, r ~ U[0, 1)."""
        r = torch.rand_like(kappa)
        return (-torch.log1p(r * torch.expm1(-2 * kappa)) / kappa).clamp(0, 2)

    def _one_minus_w_wood(self, kappa: torch.Tensor, with_log_weight: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Wood's w = (1 − (1+b)ε)/(1 − (1−b)ε), as 1 − w = 2bε/D; differentiable in κ through b.

        ``kappa`` is κ expanded to sample + batch shape. Returns 1 − w and, if asked, the log weight.
        b is computed here from that ``kappa``, not cached per instance: it is needed only here,
        once per draw, and its gradient must reach κ through the same node as the log weight's
        (a cached b would regroup the κ gradient's sums and change its rounding).
        """
        b = wood_b(kappa, self.dim)
        eps = self.sampler.sample_eps(kappa, b, self.dim)
        d = 1 - (1 - b) * eps
        one_minus_w = 2 * b * eps / d
        if not with_log_weight:
            return one_minus_w, None
        # log(q/r) at w = h(ε, κ) up to terms free of κ: target log-density of w plus the
        # log-Jacobian |∂h/∂ε| = 2b/D² (Naesseth et al. 2017, eq. 7, specialised to Wood). The
        # Bessel term is evaluated here, at sample shape, rather than taken from the cached
        # ``_log_rho``: sharing that autograd node would add this path's κ gradient to the KL's
        # before, not after, the Bessel backward, which rounds differently; training stays
        # bit-identical to the stateful implementation this replaced.
        log_weight = (
            kappa * (1 - one_minus_w)
            + 0.5 * (self.dim - 1) * torch.log(b)
            - (self.dim - 1) * torch.log(d)
            - log_bessel_iv_normalized(self._order, kappa)
        )
        return one_minus_w, log_weight

    @staticmethod
    def grad_correction_surrogate(f: torch.Tensor, log_weight: torch.Tensor) -> torch.Tensor:
        """Zero in value; its gradient is f · ∇κ log(q/r)(h(ε, κ)), the correction term g_cor.

        ``f`` holds the per-sample objective evaluated at the z that
        :meth:`rsample_with_log_weight` returned together with ``log_weight`` (shape
        sample_shape + batch_shape, or broadcastable to it). Add the result to ``f`` before
        reducing: ``loss = (f + q.grad_correction_surrogate(f, log_weight)).mean()``.
        """
        return f.detach() * (log_weight - log_weight.detach())
