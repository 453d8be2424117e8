"""Media: prior samples, test reconstructions and interpolations, as PNG files and in the experiment loggers."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image

from vae_lab.callbacks.images import image_grid, save_grid
from vae_lab.rng import seeded_stream


def interpolate(z_a: torch.Tensor, z_b: torch.Tensor, steps: int) -> torch.Tensor:
    """(steps, L) codes from z_a to z_b: linear in direction, with the norm interpolated linearly.

    For hyperspherical latents (unit norms) this stays on the sphere; for Gaussian latents it
    avoids the low-norm middle of a straight line, where prior mass is thin in high dimension.
    """
    t = torch.linspace(0, 1, steps, device=z_a.device).unsqueeze(-1)
    line = (1 - t) * z_a + t * z_b
    norm = (1 - t) * z_a.norm() + t * z_b.norm()
    return line / line.norm(dim=-1, keepdim=True).clamp_min(1e-12) * norm


def log_image(trainer: L.Trainer, key: str, path: Path, grid: np.ndarray) -> None:
    """Send a saved grid to every logger that shows images (W&B, TensorBoard)."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], step=trainer.global_step)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, grid, trainer.global_step, dataformats="HW")


def log_figure(trainer: L.Trainer, key: str, path: Path) -> None:
    """Send a saved (RGB) figure to every logger that shows images."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], step=trainer.global_step)
        elif isinstance(logger, TensorBoardLogger):
            image = np.asarray(Image.open(path).convert("RGB"))
            logger.experiment.add_image(key, image, trainer.global_step, dataformats="HWC")


class MediaLogger(L.Callback):
    """Every ``every_n_epochs`` validation epochs and after testing: samples and reconstructions."""

    def __init__(self, output_dir: str, every_n_epochs: int = 5, num_images: int = 64, interpolation_steps: int = 10):
        self.output_dir = Path(output_dir)
        self.every_n_epochs = every_n_epochs
        self.num_images = num_images
        self.interpolation_steps = interpolation_steps

    @rank_zero_only
    def _emit(self, trainer, pl_module, tag: str, x: torch.Tensor | None) -> None:
        shape = trainer.datamodule.image_shape
        if shape is None:
            return  # not images (text data write their own media)
        # Drawing images must not shift the training random stream (resumable, repeatable runs).
        with seeded_stream(0, pl_module.device), torch.inference_mode():
            outputs = {"samples": pl_module.sample(self.num_images)} if pl_module.has_prior_samples else {}
            if x is not None:
                x = x[: self.num_images // 2]
                pairs = torch.stack([x, pl_module.reconstruct(x)], dim=1).reshape(-1, x.shape[-1])
                outputs["reconstructions"] = pairs
                if len(x) >= 4:  # two interpolations: between test inputs 0 and 1, and 2 and 3
                    codes = pl_module.posterior(x[:4]).mode
                    paths = [interpolate(codes[i], codes[i + 1], self.interpolation_steps) for i in (0, 2)]
                    outputs["interpolations"] = pl_module.decode(torch.cat(paths)).mean
        for name, images in outputs.items():
            columns = self.interpolation_steps if name == "interpolations" else 8
            grid = image_grid(images, shape, columns=columns)
            path = save_grid(self.output_dir / f"{name}_{tag}.png", grid)
            log_image(trainer, f"media/{name}", path, grid)

    def _first_batch(self, split: torch.Tensor) -> torch.Tensor:
        return split[: self.num_images // 2]

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        epoch = trainer.current_epoch
        if (epoch + 1) % self.every_n_epochs == 0:
            self._emit(trainer, pl_module, f"epoch{epoch:04d}", self._first_batch(trainer.datamodule.splits.valid))

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        if trainer.fast_dev_run:
            return
        self._emit(trainer, pl_module, "test", self._first_batch(trainer.datamodule.splits.test))
