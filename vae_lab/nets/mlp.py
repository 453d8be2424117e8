"""Gated dense networks (Dauphin et al. 2017), as in Tomczak & Welling's VampPrior code.

A gated layer computes ``Linear_a(x) * sigmoid(Linear_g(x))``. Both halves come from one
``Linear`` of twice the width, so each layer is one matmul instead of two.
"""

from __future__ import annotations

import torch
from torch import nn


class GatedDense(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, 2 * out_features)
        nn.init.kaiming_normal_(self.linear.weight)  # He init, as the reference code
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.linear(x).chunk(2, dim=-1)
        return value * torch.sigmoid(gate)


class GatedMLP(nn.Module):
    """``layers`` gated dense layers of width ``hidden``; ``out_features`` = hidden."""

    def __init__(self, in_features: int, hidden: int = 300, layers: int = 2):
        super().__init__()
        if layers < 1 or hidden < 1:
            raise ValueError(f"GatedMLP needs layers >= 1 and hidden >= 1, got layers={layers}, hidden={hidden}")
        widths = [in_features] + [hidden] * layers
        self.net = nn.Sequential(*(GatedDense(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)))
        self.out_features = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Flatten any leading sample dimensions: (S, B, D) -> (S*B, D) -> (S, B, H).
        lead = x.shape[:-1]
        return self.net(x.reshape(-1, x.shape[-1])).reshape(*lead, -1)
