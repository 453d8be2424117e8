"""The uniform distribution on the unit sphere S^{dim−1} ⊂ R^dim, and the sphere constraint.

The prior of hyperspherical VAEs. ``unit_sphere`` is the support shared by every distribution
on the sphere in this package (von Mises-Fisher, Power Spherical).
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Distribution, constraints


class _UnitSphere(constraints.Constraint):
    """Vectors of unit Euclidean norm (last dimension), up to √eps of the dtype.

    √eps (3e-4 in float32) accepts a vector normalised in that precision while rejecting
    an un-normalised network output.
    """

    event_dim = 1

    def check(self, value: torch.Tensor) -> torch.Tensor:
        tolerance = math.sqrt(torch.finfo(value.dtype).eps)
        return (torch.linalg.vector_norm(value, dim=-1) - 1).abs() <= tolerance

    def __repr__(self) -> str:
        return f"{self.__class__.__name__[1:]}()"


unit_sphere = _UnitSphere()


def log_sphere_surface_area(dim: int) -> float:
    """log |S^{dim−1}| = log(2 π^{dim/2} / Γ(dim/2)), the surface area of the unit sphere in R^dim."""
    return math.log(2.0) + 0.5 * dim * math.log(math.pi) - math.lgamma(0.5 * dim)


def uniform_on_sphere(shape: torch.Size, dim: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Uniform samples on S^{dim−1}, shape ``shape + (dim,)``: a normalised standard normal."""
    x = torch.randn(*shape, dim, dtype=dtype, device=device)
    # A draw of exactly 0 has probability 0; the floor keeps even that case finite.
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(torch.finfo(dtype).tiny)
    return x / norm


def broadcast_concentration(loc: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """κ as a batch-shaped tensor: accepts shape (...) or the (..., 1) of public S-VAE code."""
    scale = torch.as_tensor(scale, dtype=loc.dtype, device=loc.device)
    if scale.dim() == loc.dim() and scale.dim() > 0 and scale.shape[-1] == 1:
        scale = scale.squeeze(-1)
    return scale.expand(torch.broadcast_shapes(scale.shape, loc.shape[:-1]))


class HypersphericalUniform(Distribution):
    """Uniform distribution on S^{dim−1} = {z ∈ R^dim : ‖z‖ = 1}; batch shape (), event shape (dim,).

    ``log_prob`` is −log|S^{dim−1}| for every point of the sphere.
    """

    arg_constraints: dict = {}
    support = unit_sphere
    has_rsample = True  # the samples do not depend on any parameter

    def __init__(
        self,
        dim: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        validate_args: bool | None = None,
    ):
        if int(dim) != dim or dim < 1:
            raise ValueError(f"dim={dim}: the ambient dimension must be a positive integer")
        self.dim = int(dim)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype if dtype is not None else torch.get_default_dtype()
        super().__init__(torch.Size(), torch.Size([self.dim]), validate_args=validate_args)

    @property
    def mean(self) -> torch.Tensor:
        return torch.zeros(self.dim, dtype=self.dtype, device=self.device)

    def rsample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> torch.Tensor:
        return uniform_on_sphere(torch.Size(sample_shape), self.dim, self.dtype, self.device)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return torch.full(value.shape[:-1], -log_sphere_surface_area(self.dim), dtype=value.dtype, device=value.device)

    def entropy(self) -> torch.Tensor:
        return torch.tensor(log_sphere_surface_area(self.dim), dtype=self.dtype, device=self.device)
