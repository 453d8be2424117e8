"""Convolutional encoder and decoder for 28×28 images (Dai, Wang & Wipf 2020's depth experiments).

Per spatial scale the encoder runs ``layers_per_scale`` 3×3 convolutions (ReLU) and then halves
the resolution (2×2 max-pool, as the paper); the decoder mirrors it with 2× transposed
convolutions. ``residual_blocks`` > 0 replaces each scale's plain convolutions by that many
ResNet-style blocks of ``layers_per_scale`` convolutions with an identity skip around each block.

The encoder ends in a linear map to ``hidden`` features (what the latent head reads); the
decoder's features are ``channels`` per pixel, flattened channel-major, so the likelihood reads
them with its per-pixel head (``pixelwise: true``, a 1×1 map shared by all pixels).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vae_lab.linear import Linear


def _convs(channels: int, count: int) -> list[nn.Module]:
    layers = []
    for _ in range(count):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
    return layers


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, convs: int):
        super().__init__()
        self.body = nn.Sequential(*_convs(channels, convs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def scale_body(channels: int, layers_per_scale: int, residual_blocks: int) -> nn.Sequential:
    """One spatial scale's convolutions: plain, or ``residual_blocks`` skip-connected blocks."""
    if residual_blocks:
        return nn.Sequential(*(ResidualBlock(channels, layers_per_scale) for _ in range(residual_blocks)))
    return nn.Sequential(*_convs(channels, layers_per_scale))


def _check(image_size: int, scales: int, layers_per_scale: int, residual_blocks: int) -> int:
    if layers_per_scale < 1 or residual_blocks < 0 or scales < 1:
        raise ValueError(
            f"conv nets need layers_per_scale >= 1, residual_blocks >= 0, scales >= 1; got {layers_per_scale}, "
            f"{residual_blocks}, {scales}"
        )
    low = image_size // 2**scales
    if low * 2**scales != image_size:
        raise ValueError(f"image_size={image_size} does not halve {scales} times into whole pixels")
    return low


class ConvEncoder(nn.Module):
    def __init__(
        self,
        in_features: int,
        hidden: int = 256,
        channels: int = 32,
        layers_per_scale: int = 1,
        residual_blocks: int = 0,
        scales: int = 2,
    ):
        super().__init__()
        self.image_size = math.isqrt(in_features)
        if self.image_size**2 != in_features:
            raise ValueError(f"ConvEncoder reads square images; {in_features} pixels are not a square")
        low = _check(self.image_size, scales, layers_per_scale, residual_blocks)
        layers = [nn.Conv2d(1, channels, 3, padding=1), nn.ReLU()]
        for _ in range(scales):
            layers += [scale_body(channels, layers_per_scale, residual_blocks), nn.MaxPool2d(2)]
        self.net = nn.Sequential(*layers, nn.Flatten(), Linear(channels * low * low, hidden), nn.ReLU())
        self.out_features = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        images = x.reshape(-1, 1, self.image_size, self.image_size)
        return self.net(images).reshape(*lead, -1)


class ConvDecoder(nn.Module):
    def __init__(
        self,
        in_features: int,
        image_size: int = 28,
        channels: int = 32,
        layers_per_scale: int = 1,
        residual_blocks: int = 0,
        scales: int = 2,
        hidden: int | None = None,
        pixelwise: bool = True,
    ):
        """``hidden`` and ``pixelwise`` are the config's statement of what the likelihood reads
        (``channels`` × pixels, per pixel); they are checked, not chosen."""
        super().__init__()
        low = _check(image_size, scales, layers_per_scale, residual_blocks)
        if hidden not in (None, channels * image_size * image_size) or not pixelwise:
            raise ValueError(
                f"decoder=conv hands the likelihood {channels} features per pixel: hidden must be "
                f"{channels * image_size * image_size} and pixelwise true (got {hidden}, {pixelwise})"
            )
        self.start = nn.Sequential(Linear(in_features, channels * low * low), nn.ReLU())
        layers = []
        for _ in range(scales):
            layers += [scale_body(channels, layers_per_scale, residual_blocks)]
            layers += [nn.ConvTranspose2d(channels, channels, 2, stride=2), nn.ReLU()]
        self.net = nn.Sequential(*layers)
        self.channels, self.low = channels, low
        self.out_features = channels * image_size * image_size  # per pixel: `channels` features

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        h = self.start(z.reshape(-1, z.shape[-1])).reshape(-1, self.channels, self.low, self.low)
        return self.net(h).reshape(*lead, -1)
