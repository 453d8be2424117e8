"""The likelihood interface: decoder features -> p(x|z), a torch distribution over the whole x.

A likelihood declares which kind of data it models (``data_types``, matched against the data
config's ``type`` before anything is built) and whether it is a discrete density over 8-bit
values, for which bits per dimension are reported (``reports_bits_per_dim``), and whether its
mean is a point of the data space, for which the per-dimension MSE is reported
(``has_data_space_mean``: images, not sentences or word counts), and whether every batch of its
data has the same shape (``fixed_shape``; not sentences batched by length), which a compiled
evaluation pass needs to be reused across batches.
"""

from __future__ import annotations

import torch
from torch import nn

from vae_lab.linear import Linear

# The kinds of data a data config can declare (`type:` in conf/data/*.yaml).
DATA_TYPES = ("binary", "8bit", "continuous", "token_sequence", "word_counts")


class PixelwiseLinear(nn.Module):
    """The same linear map at every pixel (a 1×1 convolution): features (…, C·D), C channels
    per pixel flattened channel-major, -> (…, k·D), k outputs per pixel, output-major."""

    def __init__(self, in_features: int, dim: int, outputs_per_pixel: int = 1):
        super().__init__()
        if in_features % dim:
            raise ValueError(f"per-pixel head: {in_features} features are not a whole number per pixel of {dim}")
        self.channels, self.dim = in_features // dim, dim
        self.linear = Linear(self.channels, outputs_per_pixel)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        lead = features.shape[:-1]
        per_pixel = features.reshape(*lead, self.channels, self.dim).transpose(-1, -2)  # (…, D, C)
        return self.linear(per_pixel).transpose(-1, -2).reshape(*lead, -1)


def head(in_features: int, dim: int, outputs_per_pixel: int = 1, pixelwise: bool = False) -> nn.Module:
    """The likelihood's map from decoder features to its parameters: dense (MLP decoders) or the
    same map at every pixel (conv decoders, ``pixelwise``)."""
    if pixelwise:
        return PixelwiseLinear(in_features, dim, outputs_per_pixel)
    return Linear(in_features, outputs_per_pixel * dim)


class Likelihood(nn.Module):
    data_types: tuple[str, ...] = ()
    reports_bits_per_dim = False
    has_data_space_mean = False  # p(x|z).mean is a point of the data space: per-dimension MSE is reported
    fixed_shape = True  # every batch has one shape: `eval.compile=auto` compiles the evaluation pass once

    @classmethod
    def fits(cls, data_type: str) -> bool:
        return data_type in cls.data_types

    def training_logs(self) -> dict:
        """The likelihood's own parameters worth a curve (e.g. a learned variance), logged as train/<name>."""
        return {}
