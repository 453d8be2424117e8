"""Data-dependent initialisation: a latent family that starts from training examples gets them at fit start.

``LatentFamily.initialise_from_data(train)`` receives the training split once, before the first
step (the VampPrior's pseudo-inputs with ``prior.init=data``; a no-op for other families). The
family itself decides whether it needs it and remembers having done it, so resuming from a
checkpoint does not overwrite trained weights.
"""

from __future__ import annotations

import lightning as L


class DataDependentInit(L.Callback):
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.latent.initialise_from_data(trainer.datamodule.splits.train)
