"""BN-VAE (Zhu et al., 2020): batch normalisation of the posterior means, scale frozen at γ.

μ_d = γ · (μ̃_d − mean_batch μ̃_d) / std_batch μ̃_d + s_d with a learned shift s_d. Over a batch,
mean μ_d² = γ² + s_d², so the batch's expected KL is at least latent · γ² / 2 whatever the
network does: the KL cannot vanish. Evaluation uses the running statistics, as BatchNorm does.

BatchNorm's ε is 1e-8 here (PyTorch's default 1e-5 in the reference code): the floor needs the
batch variance of μ̃ to dwarf ε, and a collapsing encoder drives that variance towards zero.
"""

from __future__ import annotations

import torch
from torch import nn

from vae_lab.latents.gaussian import GaussianLatent


class BatchNormGaussianLatent(GaussianLatent):
    def __init__(self, in_features: int, latent_dim: int, gamma: float = 0.7, **gaussian):
        super().__init__(in_features, latent_dim, **gaussian)
        if not gamma > 0:
            raise ValueError(f"prior.gamma={gamma}: the frozen batch-norm scale must be > 0")
        self.gamma = gamma
        self.normalise = nn.BatchNorm1d(latent_dim, eps=1e-8, affine=False)
        self.shift = nn.Parameter(torch.zeros(latent_dim))

    def mean_and_std(self, mean: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, std = super().mean_and_std(mean, logvar)
        lead = mean.shape[:-1]
        normalised = self.normalise(mean.reshape(-1, mean.shape[-1])).reshape(*lead, -1)
        return self.gamma * normalised + self.shift, std
