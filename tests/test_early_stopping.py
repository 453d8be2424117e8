"""Warm-up-aware early stopping: no stop while β < 1, then stop after `patience` bad epochs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from vae_lab.callbacks.early_stopping import WarmupAwareEarlyStopping


def fake_trainer():
    strategy = SimpleNamespace(reduce_boolean_decision=lambda decision: decision)
    return SimpleNamespace(
        sanity_checking=False, fast_dev_run=False, should_stop=False, callback_metrics={}, strategy=strategy
    )


def epochs_run(stopper: WarmupAwareEarlyStopping, losses: list[float]) -> int:
    """Feed one validation value per epoch; return how many epochs ran before the stop."""
    trainer = fake_trainer()
    for epoch, loss in enumerate(losses):
        trainer.current_epoch = epoch
        trainer.callback_metrics = {"val/neg_elbo": torch.tensor(loss)}
        stopper.on_validation_end(trainer, None)
        if trainer.should_stop:
            return epoch + 1
    return len(losses)


def test_counter_is_held_at_zero_during_warmup():
    # Ten epochs, the best value at epoch 0 and worse ever after; patience 2, warm-up 6 epochs:
    # the counter may only start at epoch index 5 (β = 6/6 = 1), so 5, 6, 7 are the 3 > 2 bad epochs.
    losses = [100.0] + [101.0] * 9
    assert epochs_run(WarmupAwareEarlyStopping(patience=2, warmup_epochs=6), losses) == 8
    assert epochs_run(WarmupAwareEarlyStopping(patience=2, warmup_epochs=0), losses) == 4


def test_improvements_after_warmup_reset_the_counter():
    losses = [10.0, 9.0, 9.5, 9.5, 8.0, 8.5, 8.5, 8.5, 8.5]
    stopper = WarmupAwareEarlyStopping(patience=2, warmup_epochs=2)
    assert epochs_run(stopper, losses) == 8
    assert stopper.best == 8.0


def test_best_value_is_tracked_during_warmup():
    stopper = WarmupAwareEarlyStopping(patience=1, warmup_epochs=4)
    # Best at epoch 1 (in warm-up); after warm-up nothing beats it, so the stop comes 2 epochs in.
    assert epochs_run(stopper, [5.0, 1.0, 3.0, 3.0, 3.0, 3.0, 3.0]) == 5
    assert stopper.best == 1.0


def test_state_survives_a_checkpoint():
    stopper = WarmupAwareEarlyStopping(patience=5)
    epochs_run(stopper, [3.0, 4.0, 4.0])
    resumed = WarmupAwareEarlyStopping(patience=5)
    resumed.load_state_dict(stopper.state_dict())
    assert (resumed.best, resumed.epochs_without_improvement) == (3.0, 2)


def test_missing_monitor_names_what_was_logged():
    trainer = fake_trainer()
    trainer.current_epoch, trainer.callback_metrics = 0, {"val/nll": torch.tensor(1.0)}
    with pytest.raises(KeyError, match="val/nll"):
        WarmupAwareEarlyStopping(monitor="val/elbo").on_validation_end(trainer, None)
