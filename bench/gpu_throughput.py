"""The training-throughput callback of bench/gpu_check.sh's runs (loaded with ``PYTHONPATH=bench``,
``+callbacks.throughput._target_=gpu_throughput.Throughput``); it writes ``throughput.json``, which
``bench/gpu_check.py rates`` reads. Kept apart from gpu_check.py so that reading a run's results
needs no torch import (seconds per call on a fresh GPU machine).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
import torch


class Throughput(L.Callback):
    """Training samples/s after ``warmup_steps`` (compilation and allocator warm-up excluded),
    validation during fit excluded; points/s of the final validation and test passes.

    The GPU runs asynchronously, so the clock is read after a synchronize, and only where a
    measured window opens or closes (never per step, which would stall the launch queue).
    """

    def __init__(self, out: str, warmup_steps: int = 50):
        self.out, self.warmup_steps = Path(out), warmup_steps
        self.train = {"seconds": 0.0, "samples": 0, "steps": 0}
        self.eval: dict[str, dict] = {}
        self._opened: tuple[float, int] | None = None  # (time, global step) of the open window
        self._eval_start, self._eval_points = 0.0, 0

    @staticmethod
    def _now(pl_module) -> float:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        return time.perf_counter()

    @staticmethod
    def _examples(batch) -> int:
        x = batch[0]
        return sum(len(part) for part in x) if isinstance(x, list) else len(x)

    def _close(self, trainer, pl_module) -> None:
        if self._opened is not None:
            started, step = self._opened
            self.train["seconds"] += self._now(pl_module) - started
            self.train["steps"] += trainer.global_step - step
            self._opened = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self._opened is None and trainer.global_step >= self.warmup_steps:
            self._opened = (self._now(pl_module), trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self._opened is not None:
            self.train["samples"] += self._examples(batch)

    def on_validation_start(self, trainer, pl_module):
        self._close(trainer, pl_module)  # reopened by the next training batch
        self._eval_start = self._now(pl_module)
        self._eval_points = 0

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._eval_points += self._examples(batch)

    def on_test_start(self, trainer, pl_module):
        self.on_validation_start(trainer, pl_module)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._eval_points += self._examples(batch)

    def _record_eval(self, trainer, pl_module, stage: str) -> None:
        seconds = self._now(pl_module) - self._eval_start
        points = self._eval_points
        self.eval[stage] = {"points": points, "seconds": seconds, "points_per_s": points / seconds}
        self._write(trainer)

    def on_validation_end(self, trainer, pl_module):
        if trainer.state.fn == "validate":  # the final pass, not the checks during fit
            self._record_eval(trainer, pl_module, "validate")

    def on_test_end(self, trainer, pl_module):
        self._record_eval(trainer, pl_module, "test")

    def on_train_end(self, trainer, pl_module):
        self._close(trainer, pl_module)
        self._write(trainer)

    def _write(self, trainer) -> None:
        if not trainer.is_global_zero:
            return
        train = dict(self.train)
        train["samples_per_s"] = train["samples"] / train["seconds"] if train["seconds"] else float("nan")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps({"warmup_steps": self.warmup_steps, "train": train, **self.eval}, indent=2))
