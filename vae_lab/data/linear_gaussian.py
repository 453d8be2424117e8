"""Data from a known linear-Gaussian model, for the posterior-collapse theory (Dai et al. 2020).

x = U diag(s) u + ε with u ~ N(0, I_r), U (D × r) orthonormal, ε ~ N(0, σ² I): the covariance is
U diag(s²) Uᵀ + σ² I, rank r plus isotropic noise. Probabilistic PCA is the exact solution of a
VAE with an affine decoder and learned γ: r active latent dimensions spanning U, γ = σ². With γ
fixed, a dimension whose data variance s_i² + σ² is at most γ collapses.
"""

from __future__ import annotations

import torch

from vae_lab.data.images import Splits


def linear_gaussian_model(dim: int, singular_values: list[float], seed: int = 0) -> torch.Tensor:
    """The model's orthonormal basis U (D, r), a fixed function of the seed."""
    generator = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(dim, len(singular_values), generator=generator))
    return basis


def load_linear_gaussian(
    root=None,
    dim: int = 20,
    singular_values: tuple[float, ...] = (3.0, 2.0, 1.0),
    noise_std: float = 0.1,
    n_train: int = 5000,
    n_valid: int = 1000,
    n_test: int = 1000,
    seed: int = 0,
) -> Splits:
    """Train / valid / test draws of the model (``root`` unused: generated, nothing is read)."""
    if not 0 < len(singular_values) <= dim:
        raise ValueError(f"data: {len(singular_values)} singular values for dim={dim}: need 1 <= rank <= dim")
    basis = linear_gaussian_model(dim, list(singular_values), seed)
    generator = torch.Generator().manual_seed(seed + 1)
    n = n_train + n_valid + n_test
    codes = torch.randn(n, len(singular_values), generator=generator)
    x = codes * torch.tensor(singular_values) @ basis.T + noise_std * torch.randn(n, dim, generator=generator)
    return Splits(x[:n_train], x[n_train : n_train + n_valid], x[n_train + n_valid :], (1, dim))
