"""Learning-rate halving with a return to the best model (the text VAEs' protocol: He et al. 2019,
kept by the BN-VAE and density-gap code).

After every validation: if the monitored value improved, remember the weights. Once training
has passed ``min_epochs``, ``patience`` validations without improvement halve every parameter
group's learning rate and reload the best weights; after ``max_halvings`` halvings training
stops. The best weights live in memory, identical on every process under DDP; the counters are
saved in checkpoints, so a resumed run continues its schedule (from the checkpoint's weights).
"""

from __future__ import annotations

import copy
import logging
import math

import lightning as L

log = logging.getLogger(__name__)


class HalveLearningRateOnPlateau(L.Callback):
    def __init__(
        self,
        monitor: str = "val/neg_elbo",
        patience: int = 5,
        min_epochs: int = 15,
        factor: float = 0.5,
        max_halvings: int = 5,
    ):
        if patience < 1 or max_halvings < 0 or not 0 < factor < 1:
            raise ValueError(
                f"lr halving: patience={patience} must be >= 1, max_halvings={max_halvings} >= 0, "
                f"factor={factor} in (0, 1)"
            )
        self.monitor, self.patience, self.min_epochs = monitor, patience, min_epochs
        self.factor, self.max_halvings = factor, max_halvings
        self.best, self.bad_epochs, self.halvings = math.inf, 0, 0
        self._best_weights = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if value < self.best:
            self.best, self.bad_epochs = value, 0
            self._best_weights = copy.deepcopy(pl_module.state_dict())
            return
        if trainer.current_epoch < self.min_epochs:  # 0-based: the first min_epochs epochs never count
            return
        self.bad_epochs += 1
        if self.bad_epochs < self.patience:
            return
        self.bad_epochs = 0
        if self.halvings >= self.max_halvings:
            log.info("%s has not improved after %d learning-rate halvings: stopping", self.monitor, self.halvings)
            trainer.should_stop = True
            return
        self.halvings += 1
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] *= self.factor
        if self._best_weights is not None:
            pl_module.load_state_dict(self._best_weights)
        rates = ", ".join(f"{g['lr']:g}" for o in trainer.optimizers for g in o.param_groups)
        log.info(
            "%s stalled %d epochs: learning rate halved to %s, best weights reloaded",
            self.monitor,
            self.patience,
            rates,
        )

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_epochs": self.bad_epochs, "halvings": self.halvings}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best, self.bad_epochs, self.halvings = state_dict["best"], state_dict["bad_epochs"], state_dict["halvings"]
