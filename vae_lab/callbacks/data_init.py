"""Data-dependent initialisation: parts that start from training examples get them at fit start.

Any submodule of the model with an ``initialise_from_data(train)`` method (e.g. the VampPrior's
pseudo-inputs with ``prior.init=data``) receives the training split once, before the first step.
The part itself decides whether it needs it and remembers having done it, so resuming from a
checkpoint does not overwrite trained weights.
"""

from __future__ import annotations

import lightning as L


class DataDependentInit(L.Callback):
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        parts = [m for m in pl_module.modules() if hasattr(m, "initialise_from_data")]
        if not parts:
            return
        splits = getattr(trainer.datamodule, "splits", None)
        if splits is None:
            raise RuntimeError(
                "a model part needs training data at fit start, but the datamodule has no `splits`; "
                "use vae_lab.data.datamodule.TensorDataModule or an init that needs no data"
            )
        for part in parts:
            part.initialise_from_data(splits.train)
