"""``python -m vae_lab.report FOLDER --wandb``: the generated tables and plots as one W&B run.

The run joins the sweep's group (the name the training runs' logger gave it: ``<date>_<time>``
of ``multirun/<date>/<time>``), so the paper table sits next to the runs on the dashboard. Offline
unless ``WANDB_MODE`` says otherwise or ``WANDB_API_KEY`` is set: the run then lands in
``<out>/wandb/offline-run-*`` for ``wandb sync`` to upload later.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path


def sweep_group(folder: Path) -> str:
    """The W&B group of a sweep folder, as ``vae_lab.resolvers.sweep_group`` names it."""
    folder = folder.resolve()
    return f"{folder.parent.name}_{folder.name}"


def log_report(out: Path, folder: Path, markdown: str, project: str = "vae_lab") -> Path:
    """Log every report CSV in ``out`` as a W&B table and every report PNG as an image; returns
    the run's local folder."""
    import wandb

    mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    run = wandb.init(
        project=project,
        group=sweep_group(folder),
        job_type="report",
        name=f"report-{sweep_group(folder)}",
        dir=str(out),
        mode=mode,
    )
    try:
        logged = {}
        for path in sorted(out.glob("report*.csv")):
            with path.open(newline="") as f:
                rows = list(csv.reader(f))
            if len(rows) > 1:
                logged[f"report/{path.stem}"] = wandb.Table(columns=rows[0], data=rows[1:])
        for path in sorted([*out.glob("report*.png"), *out.glob("log_likelihoods.png")]):
            logged[f"report/{path.stem}_figure"] = wandb.Image(str(path))
        logged["report/markdown"] = wandb.Html(f"<pre>{markdown}</pre>")
        run.log(logged)
        return Path(run.dir).parent
    finally:
        run.finish()
