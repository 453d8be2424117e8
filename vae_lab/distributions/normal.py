"""The diagonal Gaussian's Normal, drawing its samples as loc + scale · ε."""

from __future__ import annotations

import torch
from torch.distributions import Normal as TorchNormal


class Normal(TorchNormal):
    """``torch.distributions.Normal`` whose ``sample`` is ``rsample`` without gradients.

    torch's ``sample`` calls ``torch.normal(loc, scale)`` on the expanded (S, B, L) parameters, which
    first checks scale ≥ 0 with a contiguous copy and a reduction over all S × B × L values: for
    the importance samples of a test batch that check costs two thirds as much as the draw. Both
    draw ε from the same generator in the same order and form loc + scale·ε, so the samples are
    bit-identical (tested).
    """

    def sample(self, sample_shape: tuple[int, ...] = ()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)
