"""Media: prior samples and test reconstructions, as PNG files and in the experiment loggers."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from vae_lab.callbacks.images import image_grid, save_grid
from vae_lab.rng import seeded_stream


def log_image(trainer: L.Trainer, key: str, path: Path, grid: np.ndarray) -> None:
    """Send a saved grid to every logger that shows images (W&B, TensorBoard)."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], step=trainer.global_step)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, grid, trainer.global_step, dataformats="HW")


class MediaLogger(L.Callback):
    """Every ``every_n_epochs`` validation epochs and after testing: samples and reconstructions."""

    def __init__(self, output_dir: str, every_n_epochs: int = 5, num_images: int = 64):
        self.output_dir = Path(output_dir)
        self.every_n_epochs = every_n_epochs
        self.num_images = num_images

    @rank_zero_only
    def _emit(self, trainer, pl_module, tag: str, x: torch.Tensor | None) -> None:
        shape = trainer.datamodule.image_shape
        if shape is None:
            return  # not images (text data write their own media)
        # Drawing images must not shift the training random stream (resumable, repeatable runs).
        with seeded_stream(0, pl_module.device), torch.inference_mode():
            outputs = {"samples": pl_module.sample(self.num_images)} if pl_module.latent.can_sample_prior else {}
            if x is not None:
                x = x[: self.num_images // 2]
                pairs = torch.stack([x, pl_module.reconstruct(x)], dim=1).reshape(-1, x.shape[-1])
                outputs["reconstructions"] = pairs
        for name, images in outputs.items():
            grid = image_grid(images, shape, columns=8)
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
