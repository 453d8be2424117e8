"""Figures of the VampPrior report: the learned pseudo-inputs and per-example test log-likelihoods.

The histogram's values are also saved (``test_log_likelihoods.npy``) so ``vae_lab.report`` can
overlay the priors of a sweep in one plot, as the reproduction report compares them.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from vae_lab.callbacks.images import image_grid, save_grid
from vae_lab.callbacks.media import log_image
from vae_lab.plotting import pyplot, save_figure
from vae_lab.run_folder import LOG_LIKELIHOODS_FILE


def save_histogram(path: Path, log_likelihoods: np.ndarray, title: str, bins: int = 100) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(log_likelihoods, bins=bins, color="tab:blue", alpha=0.8)
    ax.set(xlabel="test log-likelihood per example (nats)", ylabel="examples", title=title)
    save_figure(fig, path)
    return path


class ReportFigures(L.Callback):
    """Pseudo-input grid every ``every_n_epochs`` and after testing; LL histogram after testing."""

    def __init__(self, output_dir: str, every_n_epochs: int = 5, num_pseudo_inputs: int = 100):
        self.output_dir = Path(output_dir)
        self.every_n_epochs = every_n_epochs
        self.num_pseudo_inputs = num_pseudo_inputs

    @rank_zero_only
    def _pseudo_inputs(self, trainer: L.Trainer, pl_module: L.LightningModule, tag: str) -> None:
        shape = trainer.datamodule.image_shape
        if not pl_module.latent.needs_pseudo_inputs or shape is None:
            return  # a prior without pseudo-inputs, or data that are not images
        pseudo_inputs = pl_module.latent.pseudo_inputs
        grid = image_grid(pseudo_inputs[: self.num_pseudo_inputs].detach(), shape, columns=10)
        path = save_grid(self.output_dir / f"pseudo_inputs_{tag}.png", grid)
        log_image(trainer, "media/pseudo_inputs", path, grid)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._pseudo_inputs(trainer, pl_module, f"epoch{trainer.current_epoch:04d}")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.fast_dev_run:
            return
        self._pseudo_inputs(trainer, pl_module, "test")
        if pl_module.test_log_likelihoods.update_count == 0:
            return  # no importance samples were drawn (eval.iw_samples_test=0)
        # compute() gathers every process's values, so all ranks must call it.
        log_likelihoods = pl_module.test_log_likelihoods.compute()
        self._histogram(trainer, log_likelihoods.float().cpu().numpy())

    @rank_zero_only
    def _histogram(self, trainer: L.Trainer, log_likelihoods: np.ndarray) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        np.save(self.output_dir / LOG_LIKELIHOODS_FILE, log_likelihoods, allow_pickle=False)
        title = f"mean {log_likelihoods.mean():.2f} nats over {len(log_likelihoods)} examples"
        path = save_histogram(self.output_dir / "test_log_likelihoods.png", log_likelihoods, title)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_histogram("test/log_likelihood", torch.from_numpy(log_likelihoods))
            elif isinstance(logger, WandbLogger):
                logger.log_image(key="media/test_log_likelihoods", images=[str(path)])
