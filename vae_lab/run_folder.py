"""The run-folder contract: every file name and format of a run folder, written and read here only.

A run folder (one job of ``vae_lab.train``) holds:

- ``.hydra/config.yaml``, ``.hydra/hydra.yaml``, ``.hydra/overrides.yaml`` (written by Hydra);
- ``checkpoints/best.ckpt`` and ``checkpoints/last.ckpt``;
- ``metrics.json`` once the job finished: the training-time test/validation metrics, the
  evaluation settings they were taken with, and later re-evaluations under ``evaluations``;
- ``failure.json`` when the job failed (the error, its traceback and the step);
- ``media/``: images, text samples and arrays (``test_log_likelihoods.npy``).

``train``, ``evaluate`` and ``report`` go through :class:`RunFolder`; none names a file itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
from omegaconf import DictConfig, OmegaConf

METRICS_FILE = "metrics.json"
FAILURE_FILES = ("failure.json", "error.txt")  # error.txt: left by launchers of older versions
CONFIG_FILE = ".hydra/config.yaml"
HYDRA_FILE = ".hydra/hydra.yaml"
OVERRIDES_FILE = ".hydra/overrides.yaml"
CHECKPOINT_DIR = "checkpoints"
MEDIA_DIR = "media"
LOG_LIKELIHOODS_FILE = "test_log_likelihoods.npy"
LATENT_SPACE_FILE = "latent_space.json"  # the test set's per-dimension hole statistics
# The evaluation settings that identify an evaluation (what `vae_lab.evaluate` may change).
EVAL_KEYS = ("iw_samples_test", "iw_samples_val", "iw_chunk_size")


TEMP_SUFFIX = ".tmp"  # temporary files are ".<target name>.<random>.tmp": hidden, and match no "*.ckpt"


def atomic_write(target: Path, write: Callable[[BinaryIO], None]) -> None:
    """``write`` into a temporary file beside ``target``, fsync, then rename onto it, so a reader
    (or a resume) sees the old file or the new one, never half of one.

    The rename is atomic only within one file system, hence the same folder. The temporary file
    is removed on any error (disk full, KeyboardInterrupt); only a hard kill can leave it behind.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
    try:
        # os.open with 0o666 lets the umask decide the mode, as for any file written with open()
        with open(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # persist the rename itself (not possible on every OS)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_json_atomically(path: Path, data: dict) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(data, indent=2) + "\n").encode()))


def evaluation_key(settings: dict) -> str:
    """A stable name for a set of evaluation settings, e.g. ``checkpoint=best,iw_samples_test=5000``."""
    return ",".join(f"{k}={settings[k]}" for k in sorted(settings))


@dataclass(frozen=True)
class Evaluation:
    """Test metrics and the settings they were measured with."""

    metrics: dict[str, float]
    settings: dict
    source: str  # "training" or "vae_lab.evaluate"

    @property
    def importance_samples(self) -> int:
        return int(self.settings.get("iw_samples_test", 0) or 0)

    def describe(self) -> str:
        where = "at the end of training" if self.source == "training" else "by vae_lab.evaluate"
        if "iw_samples_test" not in self.settings:  # older runs did not record their settings
            return f"importance samples not recorded, {where}"
        return f"S={self.importance_samples} importance samples, {where}"


@dataclass(frozen=True)
class RunFolder:
    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    # --- files -------------------------------------------------------------------------
    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def failure_file(self) -> Path:
        return self.path / FAILURE_FILES[0]

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT_DIR

    @property
    def media_dir(self) -> Path:
        return self.path / MEDIA_DIR

    def checkpoint(self, which: str = "best") -> Path:
        """``best`` or ``last`` checkpoint path (it may not exist)."""
        if which not in ("best", "last"):
            raise ValueError(f"checkpoint {which!r}: expected 'best' or 'last'")
        return self.checkpoint_dir / f"{which}.ckpt"

    @property
    def log_likelihoods_file(self) -> Path:
        return self.media_dir / LOG_LIKELIHOODS_FILE

    # --- the job's config (written by Hydra) -------------------------------------------
    def is_job(self) -> bool:
        return (self.path / CONFIG_FILE).exists()

    def config(self) -> DictConfig:
        return OmegaConf.load(self.path / CONFIG_FILE)

    def overrides(self) -> list[str]:
        file = self.path / OVERRIDES_FILE
        return [str(o) for o in OmegaConf.load(file)] if file.exists() else []

    def choice(self, group: str) -> str | None:
        """The option picked for a config group (``prior`` -> ``vamp``), from Hydra's record."""
        file = self.path / HYDRA_FILE
        if file.exists():
            choice = OmegaConf.select(OmegaConf.load(file), f"hydra.runtime.choices.{group}")
            if choice:
                return str(choice)
        for override in self.overrides():
            key, _, value = override.partition("=")
            if key.lstrip("+~") == group:
                return value
        return None

    # --- outcome -----------------------------------------------------------------------
    def summary(self) -> dict | None:
        """The finished job's ``metrics.json``, or None."""
        if not self.metrics_file.exists():
            return None
        return json.loads(self.metrics_file.read_text())

    def status(self) -> str:
        """``ok`` (finished), ``failed`` or ``unfinished``."""
        if self.metrics_file.exists():
            return "ok"
        if any((self.path / name).exists() for name in FAILURE_FILES):
            return "failed"
        return "unfinished"

    def write_summary(
        self, metrics: dict[str, float], checkpoint: str | None, epochs: int, steps: int, overrides: list[str], **extra
    ) -> dict:
        summary = {
            "metrics": metrics,
            "checkpoint": checkpoint,
            "epochs": epochs,
            "steps": steps,
            "overrides": overrides,
        } | extra
        write_json_atomically(self.metrics_file, summary)
        return summary

    def clear_failure(self) -> None:
        self.failure_file.unlink(missing_ok=True)

    def write_failure(self, err: BaseException) -> None:
        """Leave the error in the job folder, so a sweep's report can mark the job as failed."""
        record = {
            "error": f"{type(err).__name__}: {err}",
            "step": getattr(err, "step", None),
            "traceback": traceback.format_exc(),
        }
        write_json_atomically(self.failure_file, record)

    def failure(self) -> dict | None:
        return json.loads(self.failure_file.read_text()) if self.failure_file.exists() else None

    # --- evaluations ---------------------------------------------------------------------
    def add_evaluation(self, settings: dict, metrics: dict[str, float], checkpoint: str) -> str:
        """Store a re-evaluation beside the training-time metrics; returns its key."""
        summary = self.summary()
        if summary is None:
            raise FileNotFoundError(f"{self.metrics_file} missing: only a finished run can be re-evaluated")
        key = evaluation_key(settings)
        summary.setdefault("evaluations", {})[key] = {
            "settings": settings,
            "metrics": metrics,
            "checkpoint": checkpoint,
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        write_json_atomically(self.metrics_file, summary)
        return key

    def evaluations(self) -> list[Evaluation]:
        """Every set of test metrics of this run: the training-time one first, then re-evaluations."""
        summary = self.summary()
        if summary is None:
            return []
        training_settings = summary.get("eval") or self._configured_eval()
        found = [Evaluation(summary["metrics"], training_settings, "training")]
        for entry in (summary.get("evaluations") or {}).values():
            found.append(Evaluation(entry["metrics"], entry["settings"], "vae_lab.evaluate"))
        return found

    def most_precise_evaluation(self, metric: str | None = None) -> Evaluation | None:
        """The evaluation with the most test importance samples (later ones win ties) that has
        ``metric``; None when the run has none."""
        candidates = [e for e in self.evaluations() if metric is None or metric in e.metrics]
        if not candidates:
            return None
        return max(enumerate(candidates), key=lambda item: (item[1].importance_samples, item[0]))[1]

    def _configured_eval(self) -> dict:
        if not self.is_job():
            return {}
        eval_cfg = OmegaConf.select(self.config(), "eval", default=None) or {}
        return {k: eval_cfg[k] for k in EVAL_KEYS if k in eval_cfg}

    # --- media arrays ----------------------------------------------------------------------
    def save_log_likelihoods(self, values: np.ndarray) -> Path:
        self.media_dir.mkdir(parents=True, exist_ok=True)
        np.save(self.log_likelihoods_file, values, allow_pickle=False)
        return self.log_likelihoods_file

    def log_likelihoods(self) -> np.ndarray | None:
        file = self.log_likelihoods_file
        return np.load(file, allow_pickle=False) if file.exists() else None

    @property
    def latent_space_file(self) -> Path:
        return self.path / LATENT_SPACE_FILE

    def save_latent_space(self, statistics: dict) -> Path:
        """Per-dimension KLs of the aggregate posterior, CU thresholds, or why they do not apply."""
        write_json_atomically(self.latent_space_file, statistics)
        return self.latent_space_file

    def latent_space(self) -> dict | None:
        file = self.latent_space_file
        return json.loads(file.read_text()) if file.exists() else None


def job_folders(roots: list[Path]) -> list[RunFolder]:
    """Every job folder under ``roots`` (a root may itself be one), sorted by path."""
    paths = sorted({p.parents[1] for root in roots for p in Path(root).rglob(CONFIG_FILE)})
    return [RunFolder(p) for p in paths]
