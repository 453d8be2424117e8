"""Sweep throughput on a small machine: a 4-job grid of short runs, one after another (each job
with 2 threads) against two at a time (``hydra/launcher=joblib hydra.launcher.n_jobs=2 threads=1``).

    python bench/sweep_throughput.py [--epochs 2] [--out F]

The jobs: the default model on 10 000 MNIST training images, ``latent=10,20,30,40``, a few epochs,
a 1000-image test set with 100 importance samples, CSV logger. Wall time of the whole
``python -m vae_lab.train --multirun`` command, so start-up, evaluation and the launcher's own
costs count: jobs/hour is what a user waiting for a grid sees.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from step_rates import save_result

GRID = ["latent=10,20,30,40"]
LAUNCHERS = {
    "sequential (2 threads per job)": ["threads=2"],
    "joblib, 2 jobs at once (1 thread each)": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "threads=1"],
}


def time_sweep(extra: list[str], epochs: int, folder: Path) -> float:
    command = [sys.executable, "-m", "vae_lab.train", "--multirun", *GRID, *extra, f"trainer.max_epochs={epochs}"]
    command += ["data.module.limit_train=10000", "data.module.limit_test=1000", "eval.iw_samples_test=100"]
    command += ["eval.iw_samples_val=0", "eval.hole_samples=12800", "logger=csv", f"hydra.sweep.dir={folder}"]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "WANDB_MODE": "offline"})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = {"jobs": 4, "epochs_per_job": args.epochs, "grid": GRID, "launchers": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, extra) in enumerate(LAUNCHERS.items()):
            seconds = time_sweep(extra, args.epochs, Path(tmp) / str(i))
            result["launchers"][name] = {"overrides": extra, "wall_s": seconds, "jobs_per_hour": 4 * 3600 / seconds}
    save_result(result, args.out)


if __name__ == "__main__":
    main()
