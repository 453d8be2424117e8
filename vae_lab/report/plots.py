"""The report's figures: tables as line plots, and per-example test log-likelihood histograms."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from vae_lab.plotting import pyplot, save_figure
from vae_lab.report.tables import Label, Metric, Reference, Table


def plot_tables(
    path: Path, tables: list[Table], keys: tuple[str, ...] | None = None, ylabel: str | None = None
) -> None:
    """One panel per table: each metric column (those named by ``keys``, default all) against the
    rows (error bars: std over seeds), dashed where the table shows reference values."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(tables), figsize=(5 * len(tables), 3.8), squeeze=False)
    for ax, table in zip(axes[0], tables, strict=True):
        with_reference = {c.of for c in table.columns if isinstance(c, Reference)}
        metrics = [c for c in table.columns if isinstance(c, Metric) and (keys is None or c.key in keys)]
        for i, column in enumerate(metrics):
            cells = [row.cells[column.key] for row in table.rows]
            points = [(x, c) for x, c in enumerate(cells) if c.values]
            if points:
                ax.errorbar(
                    [x for x, _ in points],
                    [c.mean for _, c in points],
                    yerr=[c.std or 0 for _, c in points],
                    marker="o",
                    color=f"C{i}",
                    label=column.title,
                    capsize=3,
                )
            refs = [(x, c.reference) for x, c in enumerate(cells) if c.reference is not None]
            if column.key in with_reference and refs:
                ax.plot(
                    *zip(*refs, strict=True),
                    linestyle="--",
                    marker="x",
                    color=f"C{i}",
                    label=f"{column.title} (reference)",
                )
        ax.set_xticks(range(len(table.rows)), [", ".join(map(str, row.label.values())) for row in table.rows])
        labels = ", ".join(c.title for c in table.columns if isinstance(c, Label))
        ax.set(xlabel=labels, ylabel=ylabel or table.quantity, title=table.name)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_log_likelihoods(path: Path, runs: list[tuple[str, int, str, np.ndarray]]) -> bool:
    """Histograms of per-example test log-likelihoods, overlaid per (dataset, latent size); ``runs``
    holds (dataset, latent, legend, values). Writes nothing (False) when there are none."""
    groups = defaultdict(list)
    for dataset, latent, legend, values in runs:
        groups[dataset, latent].append((legend, values))
    if not groups:
        return False
    plt = pyplot()
    datasets = sorted({d for d, _ in groups})
    latents = sorted({latent for _, latent in groups})
    fig, axes = plt.subplots(
        len(datasets), len(latents), figsize=(4 * len(latents), 3.2 * len(datasets)), squeeze=False
    )
    for ax in axes.flat:
        ax.set_visible(False)  # shown again where a (dataset, latent) pair has runs
    for (dataset, latent), found in sorted(groups.items()):
        ax = axes[datasets.index(dataset), latents.index(latent)]
        ax.set_visible(True)
        bins = np.linspace(min(v.min() for _, v in found), max(v.max() for _, v in found), 60)
        for legend, values in found:
            ax.hist(values, bins=bins, histtype="step", linewidth=1.5, label=legend)
        ax.set(title=f"{dataset}, latent {latent}", xlabel="test log-likelihood (nats)", ylabel="examples")
        ax.legend(fontsize=7)
    save_figure(fig, path)
    return True
