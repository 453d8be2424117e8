"""Seeded random streams that leave the global (training) stream untouched."""

from __future__ import annotations

import contextlib

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
