"""Learning-rate halving with a return to the best weights (experiment=dg_ptb's schedule)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from vae_lab.callbacks.lr_halving import HalveLearningRateOnPlateau


def run_epochs(callback, losses: list[float], module: torch.nn.Linear, optimizer) -> SimpleNamespace:
    """Feed one validation value per epoch; the weights move every epoch, as training would."""
    trainer = SimpleNamespace(sanity_checking=False, should_stop=False, optimizers=[optimizer], callback_metrics={})
    trainer.history = []
    for epoch, loss in enumerate(losses):
        with torch.no_grad():
            module.weight.fill_(float(epoch))  # "training" of this epoch
        trainer.current_epoch = epoch
        trainer.callback_metrics = {"val/neg_elbo": torch.tensor(loss)}
        callback.on_validation_end(trainer, module)
        trainer.history.append((optimizer.param_groups[0]["lr"], float(module.weight.detach()[0, 0])))
        if trainer.should_stop:
            break
    return trainer


def test_stalls_after_min_epochs_halve_the_rate_reload_the_best_weights_and_finally_stop():
    module = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
    callback = HalveLearningRateOnPlateau(patience=2, min_epochs=3, max_halvings=2)
    # Best at epoch 1; epochs 2 (before min_epochs: not counted), 3, 4 stall -> halve at epoch 4.
    losses = [10.0, 5.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0]
    trainer = run_epochs(callback, losses, module, optimizer)
    rates = [lr for lr, _ in trainer.history]
    assert rates[:4] == [0.5] * 4 and rates[4] == 0.25 and rates[6] == 0.125
    assert trainer.history[4][1] == 1.0  # epoch 4 ends with epoch 1's (best) weights
    assert trainer.should_stop and len(trainer.history) == 9  # a third stall after two halvings stops
    assert callback.state_dict() == {"best": 5.0, "bad_epochs": 0, "halvings": 2}


def test_improvements_reset_the_count_and_the_state_survives_a_checkpoint():
    module = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(module.parameters(), lr=1.0)
    callback = HalveLearningRateOnPlateau(patience=2, min_epochs=0)
    trainer = run_epochs(callback, [5.0, 6.0, 4.0, 6.0, 3.0], module, optimizer)
    assert [lr for lr, _ in trainer.history] == [1.0] * 5 and not trainer.should_stop
    restored = HalveLearningRateOnPlateau()
    restored.load_state_dict(callback.state_dict())
    assert restored.state_dict() == {"best": 3.0, "bad_epochs": 0, "halvings": 0}


@pytest.mark.parametrize("kwargs", [{"patience": 0}, {"factor": 1.0}, {"max_halvings": -1}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match="lr halving"):
        HalveLearningRateOnPlateau(**kwargs)
