"""Callbacks that break a run on purpose, for the robustness tests (loaded via +callbacks.*)."""

from __future__ import annotations

import os
import signal

import lightning as L
import torch


class KillAtStep(L.Callback):
    """SIGKILL this process once ``step`` optimiser steps are done: no cleanup, no last save.
    (A Lightning batch is a group of steps_per_call steps: the first group end at or past ``step``.)"""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class PoisonWeightsAtStep(L.Callback):
    """Set the encoder's first weight matrix to NaN before the group holding ``step``: the loss
    turns non-finite."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, *args):
        if trainer.global_step <= self.step < trainer.global_step + trainer.datamodule.steps_per_call:
            with torch.no_grad():
                next(pl_module.encoder.parameters()).fill_(float("nan"))
