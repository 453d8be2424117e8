"""Lightning's rich progress bar, with its per-batch bookkeeping thinned out during training.

``RichProgressBar`` updates its task and re-reads the logged metrics after every training batch
(~0.15 ms of Python, 2 % of a small MLP's step on the CPU) although its display thread redraws
only ``refresh_rate`` times a second. Here the training bar is updated every ``update_every``
batches and on an epoch's last batch; what is shown (count, speed, metrics) stays exact at each
update, and the count is brought up to date at the epoch's end (also when ``max_steps`` stops it
mid-epoch). Validation and test bars are unchanged.
"""

from __future__ import annotations

import math

from lightning.pytorch.callbacks import RichProgressBar


class ProgressBar(RichProgressBar):
    def __init__(self, update_every: int = 10, **kwargs):
        if update_every < 1:
            raise ValueError(f"progress bar update_every={update_every}: must be >= 1 (1 = every batch)")
        super().__init__(**kwargs)
        self.update_every = update_every
        self._batches_done = 0  # of the current training epoch
        self._epoch_total = math.inf  # its length, as the bar was set up at the epoch's start

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        # (Read once: with max_steps, Lightning's total shrinks as steps are taken.)
        self._epoch_total, self._batches_done = self.total_train_batches, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        done = self._batches_done = batch_idx + 1
        if done % self.update_every == 0 or done >= self._epoch_total:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._update(self.train_progress_bar_id, self._batches_done)
        super().on_train_epoch_end(trainer, pl_module)
