"""Dropout whose mask is the same under multi-process training as in one process."""

from __future__ import annotations

import torch
from torch import nn

from vae_lab.rng import draw_for_share


class GlobalBatchDropout(nn.Dropout):
    """``nn.Dropout`` with its mask drawn for the whole global batch (dim 0) and this process's
    rows kept (:func:`vae_lab.rng.draw_for_share`); in one process it is ordinary dropout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        uniform = draw_for_share(lambda shape: torch.rand(shape, device=x.device), x.shape)
        return x * (uniform >= self.p).to(x.dtype) * (1.0 / (1.0 - self.p))
