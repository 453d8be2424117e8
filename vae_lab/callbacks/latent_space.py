"""Pictures of the latent space after testing: where the posteriors sit against the prior ("holes"),
and how far each dimension's aggregate posterior is from the prior.

- ``media/latent_pca.png``: the test posterior means projected on their first two principal
  axes, with prior samples projected the same way on top: prior mass where no posterior mean
  lies is a hole.
- ``media/latent_kl_per_dim.png``: per dimension, KL(q_agg,d ‖ p_d) and KL(p_d ‖ q_agg,d), with
  the CU threshold drawn (dimensions below it in the second direction count as covered).
- ``latent_space.json`` in the run folder: those numbers, or why they do not apply.

The statistics come from the model's hole metrics (``VAEModule.latent_statistics``, computed in
``on_test_epoch_end``, which runs before this ``on_test_end``).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from vae_lab.callbacks.media import log_figure
from vae_lab.metrics.holes import PER_DIMENSION
from vae_lab.plotting import pyplot, save_figure
from vae_lab.rng import seeded_stream
from vae_lab.run_folder import RunFolder


def principal_axes(points: torch.Tensor, k: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centre, the top-k principal axes (k, L) and the share of variance each explains."""
    centre = points.mean(0)
    _, singular, axes = torch.linalg.svd(points - centre, full_matrices=False)
    share = singular.square() / singular.square().sum().clamp_min(1e-30)
    return centre, axes[:k], share[:k]


def save_pca_figure(path: Path, means: torch.Tensor, prior_samples: torch.Tensor) -> Path:
    plt = pyplot()
    centre, axes, share = principal_axes(means.double())
    fig, ax = plt.subplots(figsize=(5, 4.5))
    project = lambda z: ((z.double() - centre) @ axes.T).numpy()  # noqa: E731
    m, p = project(means), project(prior_samples)
    if axes.shape[0] == 1:  # a 1-D latent: its axis against a jitter-free zero line
        m, p = (
            torch.cat([torch.tensor(m), torch.zeros(len(m), 1)], 1).numpy(),
            torch.cat([torch.tensor(p), torch.zeros(len(p), 1)], 1).numpy(),
        )
    ax.scatter(m[:, 0], m[:, 1], s=3, alpha=0.4, color="tab:blue", label=f"test posterior means ({len(m)})")
    ax.scatter(p[:, 0], p[:, 1], s=4, alpha=0.6, color="tab:orange", marker="x", label=f"prior samples ({len(p)})")
    labels = [f"PC{i + 1} ({100 * float(s):.0f} % of the means' variance)" for i, s in enumerate(share)]
    ax.set(xlabel=labels[0], ylabel=labels[1] if len(labels) > 1 else "", title="latent space: posteriors vs prior")
    ax.legend(loc="upper right", fontsize=7, markerscale=4)
    save_figure(fig, path)
    return path


def save_kl_bars(path: Path, to_prior: list[float], from_prior: list[float], threshold: float) -> Path:
    plt = pyplot()
    dims = range(len(to_prior))
    floor = 1e-4  # log axis: values below it (and rounding noise below 0) sit on the floor
    fig, ax = plt.subplots(figsize=(max(5, 0.25 * len(to_prior) + 2), 3.5))
    width = 0.4
    ax.bar([d - width / 2 for d in dims], [max(v, floor) for v in to_prior], width, label="KL(q_agg,d ‖ p_d)")
    ax.bar([d + width / 2 for d in dims], [max(v, floor) for v in from_prior], width, label="KL(p_d ‖ q_agg,d)")
    ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"CU threshold {threshold:g}")
    covered = sum(v < threshold for v in from_prior)
    ax.set(
        yscale="log",
        xlabel="latent dimension",
        ylabel="nats",
        title=f"aggregate posterior vs prior per dimension: CU({threshold:g}) = {covered} of {len(from_prior)}",
    )
    ax.legend(fontsize=7)
    save_figure(fig, path)
    return path


class LatentSpaceFigures(L.Callback):
    def __init__(self, run_dir: str, prior_samples: int = 2000, max_points: int = 5000, cu_threshold: float = 0.03):
        self.run = RunFolder(Path(run_dir))
        self.prior_samples, self.max_points, self.cu_threshold = prior_samples, max_points, cu_threshold

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        statistics = pl_module.latent_statistics
        if statistics is None or trainer.fast_dev_run:
            return
        self._emit(trainer, pl_module, statistics)

    @rank_zero_only
    def _emit(self, trainer, pl_module, statistics: dict) -> None:
        vectors = {name: statistics[name].tolist() for name in PER_DIMENSION if statistics.get(name) is not None}
        self.run.save_latent_space(
            {"prior_samples": statistics["prior_samples"], "not_applicable": statistics["not_applicable"]} | vectors
        )
        means = statistics["posterior_means"].detach().float().cpu()[: self.max_points]
        with seeded_stream(0, pl_module.device), torch.no_grad():
            prior = pl_module.prior().sample((self.prior_samples,)).float().cpu()
        media = self.run.media_dir
        log_figure(trainer, "media/latent_pca", save_pca_figure(media / "latent_pca.png", means, prior))
        if len(vectors) == len(PER_DIMENSION):
            path = save_kl_bars(
                media / "latent_kl_per_dim.png", *(vectors[n] for n in reversed(PER_DIMENSION)), self.cu_threshold
            )
            log_figure(trainer, "media/latent_kl_per_dim", path)
