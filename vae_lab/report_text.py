"""The text-VAE table of `vae_lab.report`: one row per job, the metrics of Xu & Durrett / He et al.

Columns: dataset, prior (κ when fixed), seed, epochs/steps, ELBO perplexity (the figure the vMF
paper reports), importance-sampled perplexity and NLL (when drawn), KL, mutual information,
active units, and the paper's vMF perplexity (REFERENCE.md §3). Failed and unfinished jobs are
rows that say so.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from omegaconf import OmegaConf

PAPER_VMF_PPL = {"ptb": 98, "20ng": 793, "yelp": 54}  # REFERENCE.md §3
COLUMNS = ["ppl_elbo", "ppl", "nll", "kl", "mi", "active_units"]
FAILURE_FILES = ("failure.json", "error.txt")


def is_text_job(cfg) -> bool:
    """Text data configs declare their extra metrics (perplexities, MI)."""
    return OmegaConf.select(cfg, "data.metrics", default=None) is not None


def text_row(job_dir: Path, cfg) -> dict:
    prior = str(cfg.prior._target_).rsplit(".", 1)[-1].replace("Latent", "")
    kappa = OmegaConf.select(cfg, "prior.kappa", default=None)
    row = {"data": cfg.data.name, "prior": prior + (f" κ={kappa:g}" if kappa else ""), "seed": cfg.seed}
    metrics_file = job_dir / "metrics.json"
    if metrics_file.exists():
        summary = json.loads(metrics_file.read_text())
        row["status"] = f"{summary['epochs']} ep / {summary['steps']} steps"
        row.update({c: summary["metrics"].get(f"test/{c}") for c in COLUMNS})
    else:
        failed = any((job_dir / name).exists() for name in FAILURE_FILES)
        row["status"] = "failed" if failed else "unfinished"
        row.update(dict.fromkeys(COLUMNS))
    row["paper vMF ppl"] = PAPER_VMF_PPL.get(cfg.data.name)
    return row


def text_table(rows: list[dict]) -> str:
    header = list(rows[0])
    lines = ["### text VAEs: test metrics (perplexities per token, NLL/KL/MI in nats per example)", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in sorted(rows, key=lambda r: (r["data"], r["prior"], r["seed"])):
        cells = [f"{v:.2f}" if isinstance(v, float) else ("–" if v is None else str(v)) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_text_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
