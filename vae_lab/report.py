"""`python -m vae_lab.report FOLDER [FOLDER ...] [--reference] [--out DIR]`: sweeps -> paper tables.

Reads every job folder (one with ``.hydra/config.yaml``) under the given multirun folders and
writes, per dataset, the table in the VampPrior paper's layout: rows latent size, columns prior,
cells the test NLL in nats (binary data) or bits/dim (8-bit data), mean ± std over seeds. Jobs
without ``metrics.json`` are shown as failed (``failure.json`` or ``error.txt`` present) or
unfinished instead of being dropped. Outputs: Markdown on stdout and in ``report.md``, one row per
cell in ``report.csv``, and ``report.png`` (plus ``log_likelihoods.png`` when the runs saved their
per-example test log-likelihoods).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from vae_lab.callbacks.figures import LOG_LIKELIHOODS_FILE
from vae_lab.report_text import is_text_job, text_row, text_table, write_text_csv

FAILURE_FILES = ("failure.json", "error.txt")
PRIOR_TITLES = {"gauss": "standard", "vamp": "VampPrior"}
# Optional row keys: shown as columns only when they vary among a dataset's jobs.
ARCH_KEYS = {"hidden": "hidden", "components": "K"}

# REFERENCE.md §1, the student reproduction (MLP, 1000 epochs MNIST / 830 Frey, K = 500, hidden
# 300 unless stated), keyed by (dataset, latent, hidden, K) -> prior -> value.
REFERENCE = {
    ("mnist", 10, 300, 500): {"gauss": 93.917, "vamp": 92.297},
    ("mnist", 40, 300, 500): {"gauss": 89.703, "vamp": 89.015},
    ("mnist", 100, 300, 500): {"gauss": 90.042, "vamp": 90.780},
    ("frey", 10, 300, 500): {"gauss": 4.569, "vamp": 4.555},
    ("frey", 40, 300, 500): {"gauss": 4.620, "vamp": 4.532},
    ("frey", 100, 300, 500): {"gauss": 4.562, "vamp": 4.537},
    ("frey", 40, 600, 500): {"gauss": 4.620, "vamp": 4.536},
    ("frey", 40, 300, 1000): {"gauss": 4.617, "vamp": 4.532},
    ("frey", 40, 300, 100): {"gauss": 4.617, "vamp": 4.528},
}
REFERENCE_DEFAULTS = {"hidden": 300, "components": 500}


@dataclass
class Job:
    folder: Path
    dataset: str
    prior: str
    latent: int
    seed: int
    arch: dict  # hidden, components (None where the prior has no such setting)
    metric: str  # "test/nll" or "test/bpd"
    status: str  # ok | failed | unfinished
    value: float | None


def prior_name(job_dir: Path, cfg) -> str:
    """The `prior=` choice: from Hydra's record of choices, else the overrides, else the class."""
    hydra_file = job_dir / ".hydra" / "hydra.yaml"
    if hydra_file.exists():
        choice = OmegaConf.select(OmegaConf.load(hydra_file), "hydra.runtime.choices.prior")
        if choice:
            return choice
    overrides_file = job_dir / ".hydra" / "overrides.yaml"
    if overrides_file.exists():
        for override in OmegaConf.load(overrides_file):
            key, _, value = str(override).partition("=")
            if key.lstrip("+~") == "prior":
                return value
    return str(cfg.prior._target_).rsplit(".", 1)[-1]


def read_job(job_dir: Path) -> Job:
    cfg = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
    metric = "test/bpd" if cfg.data.get("bits_per_dim") else "test/nll"
    value, status = None, "unfinished"
    if (job_dir / "metrics.json").exists():
        metrics = json.loads((job_dir / "metrics.json").read_text())["metrics"]
        value, status = metrics.get(metric), "ok" if metric in metrics else "failed"
    elif any((job_dir / name).exists() for name in FAILURE_FILES):
        status = "failed"
    arch = {
        "hidden": OmegaConf.select(cfg, "encoder.hidden", default=None),
        "components": OmegaConf.select(cfg, "prior.components", default=None),
    }
    return Job(
        job_dir,
        cfg.data.name,
        prior_name(job_dir, cfg),
        int(cfg.latent),
        int(cfg.seed),
        arch,
        metric,
        status,
        value,
    )


def job_folders(folders: list[Path]) -> list[Path]:
    dirs = sorted({p.parent.parent for folder in folders for p in folder.rglob(".hydra/config.yaml")})
    if not dirs:
        raise SystemExit(f"no job folders (with .hydra/config.yaml) under {', '.join(map(str, folders))}")
    return dirs


def find_jobs(folders: list[Path]) -> list[Job]:
    return [read_job(d) for d in job_folders(folders)]


@dataclass
class Cell:
    values: list[float]
    failed: int
    unfinished: int
    reference: float | None

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None  # sample std over seeds

    def text(self, digits: int) -> str:
        problems = [(n, what) for n, what in ((self.failed, "failed"), (self.unfinished, "unfinished")) if n]
        if not self.values:
            return ", ".join(what for _, what in problems)
        notes = [f"{n} {what}" for n, what in problems]
        text = f"{self.mean:.{digits}f}"
        if self.std is not None:
            text += f" ± {self.std:.{digits}f} ({len(self.values)} seeds)"
        return text + (f" ({', '.join(notes)})" if notes else "")


@dataclass
class Table:
    dataset: str
    metric: str
    row_keys: list[str]  # "latent" plus the arch keys that vary
    rows: list[tuple]
    priors: list[str]
    cells: dict  # (row, prior) -> Cell

    @property
    def digits(self) -> int:
        return 3 if self.metric == "test/bpd" else 2

    @property
    def unit(self) -> str:
        return "bits/dim" if self.metric == "test/bpd" else "nats"


def _matches(job: Job, row: dict) -> bool:
    """A job fills a row when its settings agree; a setting the prior lacks (None) matches any."""
    if job.latent != row["latent"]:
        return False
    return all(job.arch[k] is None or job.arch[k] == v for k, v in row.items() if k != "latent")


def _reference(dataset: str, row: dict, prior: str) -> float | None:
    key = (dataset, row["latent"], *(row.get(k, REFERENCE_DEFAULTS[k]) for k in ("hidden", "components")))
    return REFERENCE.get(key, {}).get(prior)


def build_tables(jobs: list[Job]) -> list[Table]:
    tables = []
    for dataset in sorted({j.dataset for j in jobs}):
        mine = [j for j in jobs if j.dataset == dataset]
        varying = [k for k in ARCH_KEYS if len({j.arch[k] for j in mine if j.arch[k] is not None}) > 1]
        row_keys = ["latent", *varying]
        # Rows come from jobs that set every varying key (a prior without K cannot define a K row).
        rows = sorted(
            {(j.latent, *(j.arch[k] for k in varying)) for j in mine if all(j.arch[k] is not None for k in varying)}
        )
        rows = rows or sorted({(j.latent,) + (None,) * len(varying) for j in mine})
        known = list(PRIOR_TITLES)  # paper order first, then any other prior by name
        priors = sorted({j.prior for j in mine}, key=lambda p: (known.index(p) if p in known else len(known), p))
        cells = {}
        for row in rows:
            named = dict(zip(row_keys, row, strict=True))
            for prior in priors:
                here = [j for j in mine if j.prior == prior and _matches(j, named)]
                cells[row, prior] = Cell(
                    values=[j.value for j in here if j.status == "ok"],
                    failed=sum(j.status == "failed" for j in here),
                    unfinished=sum(j.status == "unfinished" for j in here),
                    reference=_reference(dataset, named, prior),
                )
        tables.append(Table(dataset, mine[0].metric, row_keys, rows, priors, cells))
    return tables


def to_markdown(table: Table, reference: bool) -> str:
    title = f"### {table.dataset}: test NLL ({table.unit}), mean ± std over seeds"
    header = [ARCH_KEYS.get(k, k) for k in table.row_keys]
    for prior in table.priors:
        header.append(PRIOR_TITLES.get(prior, prior))
        if reference:
            header.append("reference")
    lines = [title, "", "| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for row in table.rows:
        out = ["—" if v is None else str(v) for v in row]
        for prior in table.priors:
            cell = table.cells[row, prior]
            out.append(cell.text(table.digits) or "—")
            if reference:
                out.append("—" if cell.reference is None else f"{cell.reference:.{table.digits}f}")
        lines.append("| " + " | ".join(out) + " |")
    return "\n".join(lines) + "\n"


def write_csv(path: Path, tables: list[Table]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "dataset",
                "metric",
                "latent",
                "hidden",
                "components",
                "prior",
                "mean",
                "std",
                "seeds",
                "failed",
                "unfinished",
                "reference",
            ]
        )
        for table in tables:
            for row in table.rows:
                named = dict(zip(table.row_keys, row, strict=True))
                for prior in table.priors:
                    c = table.cells[row, prior]
                    writer.writerow(
                        [
                            table.dataset,
                            table.metric,
                            named["latent"],
                            named.get("hidden", ""),
                            named.get("components", ""),
                            prior,
                        ]
                        + ["" if v is None else v for v in (c.mean, c.std)]
                        + [len(c.values), c.failed, c.unfinished, "" if c.reference is None else c.reference]
                    )


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def plot_tables(path: Path, tables: list[Table], reference: bool) -> None:
    """Test NLL against latent size, one line per prior (error bars: std over seeds)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(tables), figsize=(5 * len(tables), 3.8), squeeze=False)
    for ax, table in zip(axes[0], tables, strict=True):
        for i, prior in enumerate(table.priors):
            points = [(r, table.cells[r, prior]) for r in table.rows if table.cells[r, prior].values]
            labels = [", ".join(map(str, r)) for r in table.rows]
            x = {r: k for k, r in enumerate(table.rows)}
            color = f"C{i}"
            name = PRIOR_TITLES.get(prior, prior)
            if points:
                ax.errorbar(
                    [x[r] for r, _ in points],
                    [c.mean for _, c in points],
                    yerr=[c.std or 0 for _, c in points],
                    marker="o",
                    color=color,
                    label=name,
                    capsize=3,
                )
            refs = [
                (x[r], table.cells[r, prior].reference)
                for r in table.rows
                if table.cells[r, prior].reference is not None
            ]
            if reference and refs:
                ax.plot(
                    *zip(*refs, strict=True),
                    linestyle="--",
                    marker="x",
                    color=color,
                    label=f"{name} (reference)",
                )
        ax.set_xticks(range(len(table.rows)), labels)
        ax.set(
            xlabel=", ".join(ARCH_KEYS.get(k, k) for k in table.row_keys),
            ylabel=f"test NLL ({table.unit})",
            title=table.dataset,
        )
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_log_likelihoods(path: Path, jobs: list[Job]) -> bool:
    """Per-example test log-likelihood histograms of each prior, overlaid per dataset and latent size."""
    groups = defaultdict(list)
    for job in jobs:
        values_file = job.folder / "media" / LOG_LIKELIHOODS_FILE
        if job.status == "ok" and values_file.exists():
            groups[job.dataset, job.latent].append((job, np.load(values_file, allow_pickle=False)))
    if not groups:
        return False
    plt = _pyplot()
    datasets = sorted({d for d, _ in groups})
    latents = sorted({latent for _, latent in groups})
    fig, axes = plt.subplots(
        len(datasets), len(latents), figsize=(4 * len(latents), 3.2 * len(datasets)), squeeze=False
    )
    for ax in axes.flat:
        ax.set_visible(False)  # shown again where a (dataset, latent) pair has runs
    for (dataset, latent), runs in sorted(groups.items()):
        ax = axes[datasets.index(dataset), latents.index(latent)]
        ax.set_visible(True)
        bins = np.linspace(min(v.min() for _, v in runs), max(v.max() for _, v in runs), 60)
        for job, values in runs:
            k = job.arch["components"]
            label = PRIOR_TITLES.get(job.prior, job.prior) + (f" K {k}" if k is not None else "")
            ax.hist(values, bins=bins, histtype="step", linewidth=1.5, label=f"{label} s{job.seed}")
        ax.set(title=f"{dataset}, latent {latent}", xlabel="test log-likelihood (nats)", ylabel="examples")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def report(folders: list[Path], reference: bool = False, out: Path | None = None) -> str:
    configs = {d: OmegaConf.load(d / ".hydra" / "config.yaml") for d in job_folders(folders)}
    text_rows = [text_row(d, cfg) for d, cfg in configs.items() if is_text_job(cfg)]
    jobs = [read_job(d) for d, cfg in configs.items() if not is_text_job(cfg)]
    out = out or folders[0]
    out.mkdir(parents=True, exist_ok=True)
    markdown = ""
    if jobs:  # image data: the VampPrior paper's layout
        tables = build_tables(jobs)
        markdown = "\n".join(to_markdown(t, reference) for t in tables)
        status = {s: sum(j.status == s for j in jobs) for s in ("ok", "failed", "unfinished")}
        counts = ", ".join(f"{n} {'finished' if s == 'ok' else s}" for s, n in status.items())
        markdown += f"\n{len(jobs)} jobs: {counts}.\n"
        write_csv(out / "report.csv", tables)
        plot_tables(out / "report.png", tables, reference)
        plot_log_likelihoods(out / "log_likelihoods.png", jobs)
    if text_rows:  # text data: Xu & Durrett's metrics, one row per job
        markdown += ("\n" if markdown else "") + text_table(text_rows)
        write_text_csv(out / "report_text.csv", text_rows)
    (out / "report.md").write_text(markdown)
    return markdown


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vae_lab.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="multirun folders (merged into one report)")
    parser.add_argument("--reference", action="store_true", help="show REFERENCE.md §1 values beside ours")
    parser.add_argument("--out", type=Path, default=None, help="where to write the files (default: first folder)")
    args = parser.parse_args(argv)
    missing = [str(f) for f in args.folders if not f.is_dir()]
    if missing:
        parser.error(f"not a folder: {', '.join(missing)}")
    print(report(args.folders, args.reference, args.out), end="")


if __name__ == "__main__":
    main()
