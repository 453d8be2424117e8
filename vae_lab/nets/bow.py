"""Bag-of-words encoder and decoder (NVDM, Miao et al. 2016, as in Xu & Durrett's code).

Encoder: counts (B, V) → linear → dropout → tanh → linear, features of size ``hidden``.
Decoder: z → linear → tanh, features of size ``hidden``; the softmax over the vocabulary is the
likelihood head (:class:`vae_lab.likelihoods.text.BagOfWordsLikelihood`).
"""

from __future__ import annotations

import torch
from torch import nn

from vae_lab.linear import Linear
from vae_lab.nets.dropout import GlobalBatchDropout


class BowEncoder(nn.Module):
    def __init__(self, vocab_size: int, hidden: int = 400, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            Linear(vocab_size, hidden), GlobalBatchDropout(dropout), nn.Tanh(), Linear(hidden, hidden)
        )
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BowDecoder(nn.Module):
    def __init__(self, latent_dim: int, hidden: int = 400):
        super().__init__()
        self.net = nn.Sequential(Linear(latent_dim, hidden), nn.Tanh())
        self.hidden = hidden

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (..., L) -> (..., H)
        return self.net(z)
