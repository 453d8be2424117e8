"""Text-VAE table from sweep folders, until ``vae_lab.report`` reads text metrics.

    python docs/text_table.py multirun/ptb_gauss multirun/ptb_vmf multirun/20ng_gauss multirun/20ng_vmf

One row per finished job (a folder with ``metrics.json`` and ``.hydra/config.yaml``): dataset,
prior, epochs and steps trained, test ELBO perplexity (Xu & Durrett's figure), importance-sampled
perplexity and NLL (when drawn), KL, mutual information, active units; beside it the paper's vMF
figure. Markdown on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

PAPER_VMF = {"ptb": 98, "20ng": 793}  # REFERENCE.md §3, test perplexity of the vMF-VAE
COLUMNS = ["ppl_elbo", "ppl", "nll", "neg_elbo", "kl", "mi", "active_units"]


def rows(folders: list[Path]):
    for metrics_file in sorted(f for folder in folders for f in folder.rglob("metrics.json")):
        job = metrics_file.parent
        cfg = OmegaConf.load(job / ".hydra" / "config.yaml")
        summary = json.loads(metrics_file.read_text())
        prior = cfg.prior._target_.rsplit(".", 1)[-1].replace("Latent", "")
        kappa = cfg.prior.get("kappa")
        yield {
            "data": cfg.data.name,
            "prior": prior + (f" κ={kappa}" if kappa else ""),
            "epochs/steps": f"{summary['epochs']}/{summary['steps']}",
            **{c: summary["metrics"].get(f"test/{c}") for c in COLUMNS},
            "paper vMF": PAPER_VMF.get(cfg.data.name),
        }


def main(folders: list[str]) -> None:
    table = list(rows([Path(f) for f in folders]))
    if not table:
        raise SystemExit(f"no finished jobs (metrics.json) under {folders}")
    header = list(table[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in table:
        cells = [f"{v:.2f}" if isinstance(v, float) else ("–" if v is None else str(v)) for v in row.values()]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
