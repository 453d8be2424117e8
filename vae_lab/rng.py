"""Seeded random streams that leave the global (training) stream untouched."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def seeded_stream(seed: int, device: torch.device):
    """Run a block on its own seeded stream; the caller's RNG state is restored afterwards."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


# Multi-process training: the configured batch is the global one, split over the processes, and
# the training step's noise is drawn for the whole global batch on every process (all processes'
# global streams start from one seed and draw the same amounts, so they stay in step), each
# keeping the rows of its share. N processes then use exactly the noise one process would.
_share = (0, 1)  # (this process's share, number of shares) of the current training batch


@contextlib.contextmanager
def batch_share(rank: int, world_size: int):
    """Within the block, :func:`draw_for_share` draws for ``world_size`` × the local batch."""
    global _share
    previous, _share = _share, (rank, world_size)
    try:
        yield
    finally:
        _share = previous


def draw_for_share(draw, shape: torch.Size | tuple[int, ...], batch_dim: int = 0) -> torch.Tensor:
    """``draw(shape)`` for this process's rows of the global batch along ``batch_dim``."""
    rank, world_size = _share
    if world_size == 1:
        return draw(shape)
    full = list(shape)
    full[batch_dim] *= world_size
    return draw(full).narrow(batch_dim, rank * shape[batch_dim], shape[batch_dim])


# torch's CPU generator fills a normal tensor 16 values at a time (two blocks of 8 uniforms through
# Box-Muller), one 32-bit draw per value: successive draws whose sizes are whole blocks continue
# the stream exactly as one larger draw would (tests/test_math.py checks it against torch).
_NORMAL_FILL_BLOCK = 16


def normal_in_chunks(
    n: int, shape: tuple[int, ...], chunk_size: int, dtype: torch.dtype, device: torch.device
) -> Iterator[torch.Tensor]:
    """``torch.empty((n, *shape)).normal_().split(chunk_size)``, the same numbers, but drawn a few
    chunks at a time on the CPU (as many as make whole blocks of the generator's fill, at most 16),
    so the (n, *shape) tensor is never allocated and each chunk is drawn just before it is used.
    Whatever runs between two chunks must not draw from the global stream. Other devices draw at once."""
    if device.type != "cpu":
        yield from torch.empty((n, *shape), dtype=dtype, device=device).normal_().split(chunk_size)
        return
    per_sample = math.prod(shape)
    per_draw = chunk_size * (_NORMAL_FILL_BLOCK // math.gcd(chunk_size * per_sample, _NORMAL_FILL_BLOCK))
    start = 0
    while start < n:
        size = min(per_draw, n - start)
        if 0 < (n - start - size) * per_sample < _NORMAL_FILL_BLOCK:
            size = n - start  # a last draw under one block would take torch's other (scalar) path
        yield from torch.empty((size, *shape), dtype=dtype).normal_().split(chunk_size)
        start += size
