"""Watching posterior collapse: per-dimension KL and posterior σ over training, and the test
posteriors' σ histogram (Dai, Wang & Wipf 2020, Figure 2).

- ``media/collapse_over_training.png``: two heatmaps, latent dimension × validation epoch, of the
  mean KL(q(z_d|x) ‖ p(z_d)) (log colour scale) and of the mean posterior σ_d; redrawn every
  ``every_n_epochs`` validations (drawing costs more than a small model's epoch) and when
  training ends. A collapsed dimension is a row that goes dark in KL and to σ ≈ 1.
- ``media/posterior_sigma_hist.png``: after testing, every test posterior's σ_d, all dimensions.

The numbers come from the model (``VAEModule.dimension_history``, ``test_dimensions``), for
Gaussian posteriors; other families have no per-dimension KL and draw nothing here.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from vae_lab.callbacks.media import log_figure
from vae_lab.plotting import pyplot, save_figure


def save_collapse_heatmaps(path: Path, history: list[dict], threshold: float) -> Path:
    plt = pyplot()
    from matplotlib.colors import LogNorm

    epochs = [h["epoch"] for h in history]
    kl = torch.stack([h["kl"] for h in history], 1).clamp_min(1e-4).numpy()  # (L, epochs)
    scale = torch.stack([h["scale"] for h in history], 1).numpy()
    fig, axes = plt.subplots(1, 2, figsize=(10, max(3, 0.12 * kl.shape[0] + 1.5)), sharey=True)
    extent = (epochs[0] - 0.5, epochs[-1] + 0.5, kl.shape[0] - 0.5, -0.5)
    image = axes[0].imshow(kl, aspect="auto", cmap="viridis", norm=LogNorm(vmin=1e-4), extent=extent)
    fig.colorbar(image, ax=axes[0], label="mean KL per dimension (nats)")
    collapsed = int((kl[:, -1] < threshold).sum())
    axes[0].set(
        xlabel="epoch", ylabel="latent dimension", title=f"KL(q(z_d|x) ‖ p): {collapsed} collapsed (< {threshold:g})"
    )
    image = axes[1].imshow(scale, aspect="auto", cmap="magma", vmin=0, vmax=max(1.0, float(scale.max())), extent=extent)
    fig.colorbar(image, ax=axes[1], label="mean posterior σ")
    axes[1].set(xlabel="epoch", title="posterior σ_d (1 = the prior's)")
    save_figure(fig, path, dpi=110)
    return path


def save_sigma_histogram(path: Path, scales: torch.Tensor) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(scales.flatten().numpy(), bins=100, range=(0, max(1.05, float(scales.max()))), color="tab:purple")
    ax.set(xlabel="posterior σ_z (every test example and dimension)", ylabel="count", title="test posteriors' σ_z")
    save_figure(fig, path)
    return path


class CollapseFigures(L.Callback):
    def __init__(self, output_dir: str, every_n_epochs: int = 10):
        if every_n_epochs < 1:
            raise ValueError(f"callbacks.collapse_figures.every_n_epochs={every_n_epochs}: must be >= 1")
        self.output_dir, self.every_n_epochs = Path(output_dir), every_n_epochs

    @rank_zero_only
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        history = getattr(pl_module, "dimension_history", None)
        if not trainer.sanity_checking and history and len(history) % self.every_n_epochs == 0:
            self._draw_history(trainer, pl_module, history)

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        history = getattr(pl_module, "dimension_history", None)
        if history:
            self._draw_history(trainer, pl_module, history)

    def _draw_history(self, trainer: L.Trainer, pl_module: L.LightningModule, history: list[dict]) -> None:
        path = save_collapse_heatmaps(
            self.output_dir / "collapse_over_training.png", history, pl_module.collapse_threshold
        )
        log_figure(trainer, "media/collapse_over_training", path)

    @rank_zero_only
    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if pl_module.test_dimensions is None or trainer.fast_dev_run:
            return
        path = save_sigma_histogram(self.output_dir / "posterior_sigma_hist.png", pl_module.test_dimensions["scales"])
        log_figure(trainer, "media/posterior_sigma_hist", path)
