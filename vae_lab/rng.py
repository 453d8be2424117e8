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
