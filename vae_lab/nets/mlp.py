"""Gated dense networks (Dauphin et al. 2017), as in Tomczak & Welling's VampPrior code.

A gated layer computes ``Linear_a(x) * sigmoid(Linear_g(x))``. Both halves come from one
``Linear`` of twice the width, so each layer is one matmul instead of two.
"""

from __future__ import annotations

import torch
from torch import nn

from vae_lab.linear import Linear


class GatedDense(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = Linear(in_features, 2 * out_features)
        nn.init.kaiming_normal_(self.linear.weight)  # He init, as the reference code
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.linear(x).chunk(2, dim=-1)
        return value * torch.sigmoid(gate)


ACTIVATIONS = ("gated", "relu")


class ReLUDense(nn.Sequential):
    def __init__(self, in_features: int, out_features: int):
        linear = Linear(in_features, out_features)
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
        nn.init.zeros_(linear.bias)
        super().__init__(linear, nn.ReLU())


class Residual(nn.Module):
    """x + layer(x): an identity skip around one hidden layer (same width in and out)."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layer(x)


class MLP(nn.Module):
    """``depth`` dense layers of width ``hidden`` (``out_features`` = hidden), gated or ReLU;
    ``residual``: identity skips around every layer after the first (the first changes width).
    ``depth=0`` passes its input through, so the latent head or the likelihood head alone makes
    the encoder or decoder affine (the linear-Gaussian experiment). ``widths`` gives the layers'
    widths one by one instead (784-256-128: ``widths=[256, 128]``), the last being ``hidden``, what
    the next part reads. ``soft_threshold`` α > 0 first maps the input through the soft threshold
    sign(u)(|u| − α)₊ (Dai, Wang & Wipf's small non-linearity: with ``depth=0``, the decoder
    μ(z) = W s_α(z) + b).
    The encoder's and decoder's depth, width and activation are config keys (``encoder.depth=6``)."""

    def __init__(
        self,
        in_features: int,
        hidden: int = 300,
        depth: int = 2,
        activation: str = "gated",
        residual: bool = False,
        widths: list[int] | None = None,
        soft_threshold: float = 0.0,
    ):
        super().__init__()
        if soft_threshold < 0:
            raise ValueError(f"soft_threshold={soft_threshold}: the threshold α must be >= 0 (0 = none)")
        self.soft_threshold = float(soft_threshold)
        if widths is not None:
            widths = [int(w) for w in widths]
            if not widths or widths[-1] != hidden or min(widths) < 1:
                raise ValueError(
                    f"widths={widths}: need positive layer widths ending in hidden={hidden} (what the next part reads)"
                )
            if residual and len(set(widths)) > 1:
                raise ValueError(f"residual=true needs equal widths for its identity skips, got widths={widths}")
            depth = len(widths)
        if depth < 0 or hidden < 1:
            raise ValueError(f"the MLP needs depth >= 0 and hidden >= 1, got depth={depth}, hidden={hidden}")
        if depth == 0 and hidden != in_features:
            raise ValueError(f"depth=0 passes the input through, so its width is the input's: set hidden={in_features}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r}: expected one of {', '.join(ACTIVATIONS)}")
        layer = GatedDense if activation == "gated" else ReLUDense
        widths = [in_features] + (widths or [hidden] * depth)
        layers = [layer(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)]
        self.net = nn.Sequential(*(Residual(m) if residual and i > 0 else m for i, m in enumerate(layers)))
        self.out_features = hidden if depth else in_features  # depth 0: the input itself (an affine model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.soft_threshold:
            x = torch.nn.functional.softshrink(x, self.soft_threshold)
        if x.dim() == 2:  # a batch (training): no reshapes, whose views each add a backward node
            return self.net(x)
        # Flatten any leading sample dimensions: (S, B, D) -> (S*B, D) -> (S, B, H).
        return self.net(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], -1)


class GatedMLP(MLP):
    """The gated MLP under its earlier name and keys (``layers``): checkpoints saved with it load."""

    def __init__(self, in_features: int, hidden: int = 300, layers: int = 2):
        super().__init__(in_features, hidden, depth=layers, activation="gated")
