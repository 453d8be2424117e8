"""Training samples/s of a vae_lab model through the real Lightning training loop.

    python bench/train_ours.py [--steps 300] [--warmup-steps 30] [--out F] [hydra overrides ...]

The model and data come from the real config (`python -m vae_lab.train` defaults: gated MLP
300, latent 40, batch 100, dynamically binarised MNIST); only logging, checkpoints, media and
validation are switched off, because they are not part of a training step. The FLOPs of one
step are counted from the model's Linear layers (forward 2·in·out per example; backward twice
that, minus the input gradient of the first layer), to compare with this machine's matmul rate.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from step_rates import rates, save_result  # sibling script (bench/ is on sys.path when run as a script)

from vae_lab.config import compose_train_config
from vae_lab.train import build


class StepTimer(L.Callback):
    """Wall time of training steps after ``warmup`` steps (first steps pay one-off costs,
    compilation included with ``compile=true``); keeps every step's end time."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.ends = warmup, None, []

    def on_train_batch_start(self, trainer, *args):
        # >=: with steps_per_call K the step count moves K at a time between batches
        if trainer.global_step >= self.warmup and self.start is None:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, *args):
        if self.start is not None:
            self.ends.append(time.perf_counter())


def linear_flops_per_example(model: torch.nn.Module, first_layer: torch.nn.Linear | None) -> int:
    """Forward + backward matmul FLOPs of all Linear layers for one example."""
    total = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            forward = 2 * module.in_features * module.out_features
            backward = forward if module is first_layer else 2 * forward  # no input grad for x
            total += forward + backward
    return total


def training_only_config(overrides: list[str], max_steps: int, folder: Path):
    """The run's composed config with only its training loop left: no logger, checkpoints, media or
    validation (they are not part of a training step), stopping after ``max_steps`` optimiser steps."""
    return compose_train_config(
        [
            *overrides,
            "logger=[]",
            "+trainer.enable_checkpointing=false",
            # Only the progress bar of the default callbacks: the others act at epoch ends.
            "~callbacks.model_checkpoint",
            "~callbacks.media",
            "~callbacks.report_figures",
            "~callbacks.data_init",
            "+trainer.limit_val_batches=0",
            f"+trainer.max_steps={max_steps}",
            "trainer.max_epochs=1000",
            "+trainer.enable_model_summary=false",
        ],
        folder,
    )


def measure(overrides: list[str], steps: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = training_only_config(overrides, steps + warmup, Path(tmp))
        datamodule, model, _, trainer = build(cfg)
        timer = StepTimer(warmup)
        trainer.callbacks.append(timer)
        trainer.fit(model, datamodule=datamodule)
    batch = cfg.data.module.batch_size
    # Each Lightning batch is a group of steps_per_call batches (choose K dividing the 500 batches
    # of an epoch, or a short last group makes this an overestimate).
    per_call = batch * cfg.steps_per_call
    first = next(m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear))
    flops = linear_flops_per_example(model, first)
    timed = rates([timer.start, *timer.ends], per_call)
    return {
        "overrides": overrides,
        "steps_timed": timed["steps"] * cfg.steps_per_call,
        "batch_size": batch,
        "steps_per_call": cfg.steps_per_call,
        "samples_per_s": timed["samples_per_s"],
        "best_window_samples_per_s": timed["best_window_samples_per_s"],
        "median_window_samples_per_s": timed["median_window_samples_per_s"],
        "matmul_gflop_per_example": flops / 1e9,
        "achieved_gflops": timed["samples_per_s"] * flops / 1e9,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup-steps", type=int, default=30)
    parser.add_argument("--out", type=Path)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    result = measure(args.overrides, args.steps, args.warmup_steps)
    save_result(result, args.out)


if __name__ == "__main__":
    main()
