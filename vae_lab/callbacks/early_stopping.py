"""Early stopping that cannot fire during the β warm-up (VampPrior protocol).

While β < 1 the validation −ELBO (always computed at β = 1) can stall or rise for reasons that say
nothing about overfitting, so the counter of epochs without improvement is held at zero until the
warm-up ends; the best value is still tracked throughout. As in the reference code, training stops
once the monitored value has not improved for more than ``patience`` epochs after warm-up.
"""

from __future__ import annotations

import math

import lightning as L


class WarmupAwareEarlyStopping(L.Callback):
    def __init__(self, monitor: str = "val/neg_elbo", patience: int = 50, warmup_epochs: int = 0, mode="min"):
        if mode not in ("min", "max"):
            raise ValueError(f"mode={mode!r}: expected 'min' or 'max'")
        if patience < 0:
            raise ValueError(f"patience={patience}: must be >= 0 epochs")
        self.monitor, self.patience, self.warmup_epochs, self.mode = monitor, patience, warmup_epochs, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.epochs_without_improvement = 0

    def _improved(self, value: float) -> bool:
        return value < self.best if self.mode == "min" else value > self.best

    def in_warmup(self, epoch: int) -> bool:
        """Epochs are 0-based here; the warm-up lasts while β = (epoch + 1) / warmup < 1."""
        return epoch + 1 < self.warmup_epochs

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        if self.monitor not in trainer.callback_metrics:
            raise KeyError(
                f"early stopping monitors {self.monitor!r}, which was not logged; "
                f"logged: {sorted(trainer.callback_metrics)}"
            )
        value = float(trainer.callback_metrics[self.monitor])  # already reduced over processes
        if self._improved(value):
            self.best, self.epochs_without_improvement = value, 0
        else:
            self.epochs_without_improvement += 1
        if self.in_warmup(trainer.current_epoch):
            self.epochs_without_improvement = 0
        should_stop = self.epochs_without_improvement > self.patience
        trainer.should_stop = trainer.should_stop or trainer.strategy.reduce_boolean_decision(should_stop)

    def state_dict(self) -> dict:
        return {"best": self.best, "epochs_without_improvement": self.epochs_without_improvement}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict["best"]
        self.epochs_without_improvement = state_dict["epochs_without_improvement"]
