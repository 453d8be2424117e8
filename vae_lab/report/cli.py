"""`python -m vae_lab.report FOLDER [FOLDER ...] [--reference] [--out DIR] [--wandb]`: sweeps -> paper tables.

Reads every job folder under the given multirun folders and writes the table of each kind of
experiment (``specs.py``): image data in the VampPrior paper's layout, per dataset (rows latent
size, columns prior, test NLL in nats or bits/dim, mean ± std over seeds; ``report.csv``,
``report.png`` and, when the runs saved their per-example test log-likelihoods,
``log_likelihoods.png``), text data one row per job (``report_text.csv``). Each value comes from
the job's most precise evaluation (most test importance samples: at the end of training or by
``vae_lab.evaluate``), and a note under each table says which. Failed and unfinished jobs are
shown as such, not dropped. Markdown goes to stdout and ``report.md``; ``--wandb`` also logs the
tables and plots as one W&B run in the sweep's group (``to_wandb.py``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vae_lab.report import render
from vae_lab.report.jobs import read_jobs
from vae_lab.report.specs import SPECS
from vae_lab.report.tables import build


def report(folders: list[Path], reference: bool = False, out: Path | None = None) -> str:
    jobs = read_jobs(folders)
    out = out or folders[0]
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for spec in SPECS:
        mine = [j for j in jobs if j.kind == spec.kind]
        if not mine:
            continue
        tables = build(spec, mine, reference)
        sections.append(render.section(tables, mine))
        render.write_csv(out / spec.csv_file, tables, spec.column_field)
        spec.figures(out, tables, mine)
    markdown = "\n".join(sections)
    (out / "report.md").write_text(markdown)
    return markdown


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vae_lab.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="multirun folders (merged into one report)")
    parser.add_argument("--reference", action="store_true", help="show REFERENCE.md §1 values beside ours")
    parser.add_argument("--out", type=Path, default=None, help="where to write the files (default: first folder)")
    parser.add_argument(
        "--wandb", action="store_true", help="also log the tables and plots to W&B in the sweep's group (offline here)"
    )
    args = parser.parse_args(argv)
    missing = [str(f) for f in args.folders if not f.is_dir()]
    if missing:
        parser.error(f"not a folder: {', '.join(missing)}")
    markdown = report(args.folders, args.reference, args.out)
    print(markdown, end="")
    if args.wandb:
        from vae_lab.report.to_wandb import log_report

        run = log_report(args.out or args.folders[0], args.folders[0], markdown)
        print(f"W&B run: {run}")
