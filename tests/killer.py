"""Callbacks that break a run on purpose, for the robustness tests (loaded via +callbacks.*)."""

from __future__ import annotations

import os
import signal

import lightning as L
import torch


class KillAtStep(L.Callback):
    """SIGKILL this process once ``step`` optimiser steps are done: no cleanup, no last save."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class PoisonWeightsAtStep(L.Callback):
    """Set the encoder's first weight matrix to NaN before ``step``: the loss turns non-finite."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, *args):
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.encoder.parameters()).fill_(float("nan"))
