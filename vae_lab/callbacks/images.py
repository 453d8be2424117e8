"""Image grids with Pillow (no torchvision)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def image_grid(
    images: torch.Tensor, image_shape: tuple[int, int], columns: int | None = None, pad: int = 1
) -> np.ndarray:
    """(N, D) values in [0, 1] -> uint8 (H, W) grid of N tiles, ``columns`` per row."""
    n = images.shape[0]
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    h, w = image_shape
    grid = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad), 255, dtype=np.uint8)
    tiles = (images.detach().float().cpu().clamp(0, 1).reshape(n, h, w).numpy() * 255).round().astype(np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = tile
    return grid


def save_grid(path: Path, grid: np.ndarray, scale: int = 3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(grid)
    image.resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST).save(path)
    return path
