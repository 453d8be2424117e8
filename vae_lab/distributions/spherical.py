"""What every distribution on the sphere S^{m−1} ⊂ R^m with a mean direction and a concentration shares.

:class:`SphericalDistribution` holds the parameters (μ = ``loc``, κ = ``scale``), the shapes,
``expand``, ``mode``, the support, the KL to the uniform distribution (registered once, for every
subclass) and the last step of sampling: a draw of the cosine w = μ·z becomes a draw of z by
:func:`rotate_from_e1`. The von Mises-Fisher and Power Spherical distributions differ only in the
density of w, hence in their normaliser, entropy and the sampler of w.
"""

from __future__ import annotations

import torch
from torch.distributions import Distribution, constraints
from torch.distributions.kl import register_kl

from vae_lab.distributions.hyperspherical_uniform import (
    HypersphericalUniform,
    broadcast_concentration,
    log_sphere_surface_area,
    unit_sphere,
)

__all__ = ["SphericalDistribution", "householder_e1_to", "rotate_from_e1"]


def householder_e1_to(loc: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply an orthogonal map that sends e₁ to ``loc`` (unit vectors, last dim) to ``x``.

    A Householder reflection with u = e₁ − μ divides by |u|² = 2(1 − μ₁), which vanishes when
    μ ≈ e₁. We use u = e₁ + sμ with s = sign(μ₁), so |u|² = 2(1 + |μ₁|) ≥ 2, and the map
    x ↦ −s (x − 2u(u·x)/|u|²) still sends e₁ to μ (for s = 1 it is a reflection followed by −I,
    which is orthogonal too, so a vMF sample stays a vMF sample).
    """
    sign = torch.where(loc[..., :1] >= 0, 1.0, -1.0).to(loc.dtype)
    u = torch.cat([1 + sign * loc[..., :1], sign * loc[..., 1:]], dim=-1)
    u_sq = 2 * (1 + sign * loc[..., :1])
    return -sign * (x - u * (2 * (u * x).sum(-1, keepdim=True) / u_sq))


def rotate_from_e1(loc: torch.Tensor, w: torch.Tensor, radius: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """T_μ (w, radius · v̂) with v̂ = noise/‖noise‖ and T_μ the map of :func:`householder_e1_to`.

    With noise ~ N(0, I_{m−1}), v̂ is uniform on S^{m−2}, so this turns a draw of the cosine w = μ·z
    into a draw of z. It is householder_e1_to(loc, cat(w, radius · v̂)) worked out by hand — with
    a = 1 + |μ₁|: z₁ = μ₁w + radius (μ₂:·v̂), z₂: = μ₂:(w + s·radius (μ₂:·v̂)/a) − s·radius·v̂ — to
    make fewer passes over the (batch, m) arrays (the sampler's main cost at large m).
    """
    noise_norm = torch.linalg.vector_norm(noise, dim=-1).clamp_min(torch.finfo(noise.dtype).tiny)
    mu_first, mu_rest = loc[..., 0], loc[..., 1:]
    sign = torch.where(mu_first >= 0, 1.0, -1.0).to(loc.dtype)
    tangential = radius * torch.linalg.vecdot(mu_rest, noise) / noise_norm  # radius · (μ₂:·v̂)
    first = mu_first * w + tangential
    along_mu_rest = w + sign * tangential / (1 + sign * mu_first)
    rest = torch.addcmul(mu_rest * along_mu_rest.unsqueeze(-1), noise, (-sign * radius / noise_norm).unsqueeze(-1))
    return torch.cat([first.unsqueeze(-1), rest], dim=-1)


class SphericalDistribution(Distribution):
    """Base of distributions on S^{m−1} ⊂ R^m with mean direction μ and concentration κ.

    Args:
        loc: mean direction μ, unit vectors of shape (..., m), m ≥ 2.
        scale: concentration κ > 0, shape (...) or (..., 1) (stored as ``scale`` of shape (...)).

    Batch shape (...), event shape (m,). Subclasses compute derived quantities of κ once per
    instance with ``torch.distributions.utils.lazy_property``; every such value has the batch
    shape and is listed in ``_batch_shaped_caches``, so that :meth:`expand` expands the ones
    already computed (the others are computed afresh on the new instance, never copied stale).
    """

    arg_constraints = {"loc": unit_sphere, "scale": constraints.positive}
    support = unit_sphere
    has_rsample = True
    _batch_shaped_caches: tuple[str, ...] = ()

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor | float, validate_args: bool | None = None):
        if loc.dim() < 1 or loc.shape[-1] < 2:
            raise ValueError(
                f"loc has shape {tuple(loc.shape)}: {type(self).__name__} lives on the sphere S^(m-1) and "
                "needs mean directions of dimension m ≥ 2 in the last axis"
            )
        self.scale = broadcast_concentration(loc, scale)
        self.loc = loc.expand(*self.scale.shape, loc.shape[-1])
        super().__init__(self.scale.shape, loc.shape[-1:], validate_args=validate_args)

    @property
    def dim(self) -> int:
        """The ambient dimension m (the sphere is S^{m−1})."""
        return self.event_shape[0]

    @property
    def mode(self) -> torch.Tensor:
        return self.loc

    def expand(self, batch_shape, _instance=None):
        # Checked against this class: a subclass with its own __init__ (own state) must expand it.
        new = self._get_checked_instance(SphericalDistribution, _instance)
        batch_shape = torch.Size(batch_shape)
        new.scale = self.scale.expand(batch_shape)
        new.loc = self.loc.expand(*batch_shape, self.dim)
        for name in self._batch_shaped_caches:
            if name in self.__dict__:  # computed here already: expand it rather than recompute
                setattr(new, name, self.__dict__[name].expand(batch_shape))
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return self._log_prob_of_cosine(self._cosine(value))

    def pairwise_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q_k(z_n) for every point and every batch element: z (n, m) -> (n, K), one matmul
        (the density depends on z only through μ·z)."""
        return self._log_prob_of_cosine(z @ self.loc.reshape(-1, self.dim).T)

    def _log_prob_of_cosine(self, cosine: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _cosine(self, value: torch.Tensor) -> torch.Tensor:
        """μ·z for points z on the sphere (validated when ``validate_args``), shape sample + batch."""
        if self._validate_args:
            self._validate_sample(value)
        return (self.loc * value).sum(-1)

    def _place_cosine(self, shape: torch.Size, w: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        """Samples z of ``shape`` (sample + batch + (m,)) with μ·z = w, given radius = √(1 − w²).

        The direction orthogonal to μ is uniform on S^{m−2}: one standard normal draw of
        shape (sample + batch + (m−1,)), made after w's own draws.
        """
        noise = torch.randn(shape[:-1] + (self.dim - 1,), dtype=w.dtype, device=w.device)
        return rotate_from_e1(self.loc.expand(shape), w, radius, noise)

    def kl_to_uniform(self) -> torch.Tensor:
        """KL(self ‖ uniform on S^{m−1}) = log|S^{m−1}| − H(self), one value per batch element.

        Subclasses override this where a form without the cancellation of the two terms exists.
        """
        return log_sphere_surface_area(self.dim) - self.entropy()


@register_kl(SphericalDistribution, HypersphericalUniform)
def _kl_spherical_uniform(p: SphericalDistribution, q: HypersphericalUniform) -> torch.Tensor:
    if p.dim != q.dim:
        raise ValueError(
            f"KL between a {type(p).__name__} on S^{p.dim - 1} and a uniform on S^{q.dim - 1}: "
            "the two must live on the same sphere (same latent dimension)"
        )
    return p.kl_to_uniform()
