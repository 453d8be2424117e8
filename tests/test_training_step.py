"""The training step: manual optimisation, gradient clipping and the compiled ELBO terms."""

from __future__ import annotations

import gc

import lightning as L
import pytest
import torch

from tests.conftest import compose_config
from vae_lab.callbacks.gc_freeze import FreezeHeapDuringFit
from vae_lab.callbacks.progress import ProgressBar
from vae_lab.train import build

SMALL = ["data=synthetic", "eval.iw_samples_val=0", "eval.iw_samples_test=0", "logger=[]"]


def _model(tmp_path, *overrides):
    cfg = compose_config([*SMALL, *overrides], tmp_path)
    datamodule, model, _, _ = build(cfg)
    datamodule.setup("fit")
    return datamodule, model


class GradientNorms(L.Callback):
    """Total gradient norm as the optimiser is about to step (after clipping)."""

    def __init__(self):
        self.norms: list[float] = []

    def on_before_optimizer_step(self, trainer, module, optimizer):
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        self.norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())


def _fit(model, datamodule, steps: int, callbacks=(), progress_bar: bool = False, precision="32-true"):
    trainer = L.Trainer(
        max_steps=steps,
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=list(callbacks),
    )
    trainer.fit(model, datamodule=datamodule)
    return trainer


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])  # bf16: what precision=auto picks where native
@pytest.mark.parametrize("clip", [None, 1e-3])
def test_grad_clip_bounds_the_gradient_norm_of_every_step(tmp_path, clip, precision):
    # optimizer=adam is the fused Adam, which Lightning's own clipping refuses under mixed precision
    datamodule, model = _model(tmp_path, "optimizer=adam", f"grad_clip={'null' if clip is None else clip}")
    norms = GradientNorms()
    trainer = _fit(model, datamodule, steps=5, callbacks=[norms], precision=precision)
    assert trainer.global_step == 5 and len(norms.norms) == 5  # one optimiser step per batch
    if clip is None:
        assert min(norms.norms) > 1.0  # unclipped gradients of a fresh VAE are large
    else:
        assert max(norms.norms) <= clip * (1 + 1e-4)


def test_manual_step_equals_a_hand_written_sgd_step(tmp_path):
    """One Lightning step = zero_grad, backward of the ELBO, one optimiser step (SGD, so the
    update is the gradient itself and any wrong or missing term shows)."""
    sgd = ["optimizer._target_=torch.optim.SGD", "optimizer.lr=0.1", "~optimizer.fused", "warmup=0"]
    datamodule, model = _model(tmp_path, *sgd)
    _, reference = _model(tmp_path, *sgd)
    reference.load_state_dict(model.state_dict())
    x = next(iter(datamodule.train_dataloader()))[0][0]  # first batch of the first group
    initial = {k: v.clone() for k, v in model.named_parameters()}

    _fit(model, datamodule, steps=1)  # first batch of epoch 0 is x (seeded order)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    torch.manual_seed(model.eval_seed)  # where the model starts its training noise (on_train_start)
    loss, *_ = reference.training_loss(x, 1.0)
    loss.backward()
    optimizer.step()
    moved = 0.0
    for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
        moved += (p - initial[name]).abs().sum().item()
    assert moved > 0  # the step did update the weights


@pytest.mark.parametrize("prior", ["gauss", "vamp"])  # the families compile=auto compiles in long runs
def test_compiled_training_loss_equals_eager_values_and_gradients(tmp_path, prior):
    datamodule, model = _model(tmp_path, "compile=true", f"prior={prior}")
    x = next(iter(datamodule.train_dataloader()))[0][0]  # first batch of the first group
    torch._dynamo.reset()  # forget graphs of earlier tests,
    torch.distributions.kl._KL_MEMOIZE.clear()  # and their KL-registry lookups (the warm-up's job)
    graphs_before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    results = []
    for loss_fn in (model._loss, model.training_loss):  # torch.compile'd first, then eager
        model.zero_grad()
        torch.manual_seed(0)  # same reparameterisation noise
        loss, log_px, kl, _ = loss_fn(x, 0.5)
        loss.backward()
        results.append((log_px.detach(), kl.detach(), [p.grad.clone() for p in model.parameters()]))
        results[-1] += (torch.get_rng_state(),)
    (lp_c, kl_c, g_c, rng_c), (lp_e, kl_e, g_e, rng_e) = results
    # One graph: a graph break (e.g. in torch.distributions' KL lookup) would make two.
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs_before == 1
    assert torch.equal(rng_c, rng_e)  # the eager warm-up pass left the noise stream as it was
    torch.testing.assert_close(lp_c, lp_e, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(kl_c, kl_e, rtol=1e-4, atol=1e-4)
    for a, b in zip(g_c, g_e, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


class FreezeProbe(L.Callback):
    def on_train_batch_end(self, *args):
        self.frozen = gc.get_freeze_count()


def test_setup_objects_are_frozen_while_fitting_and_released_after(tmp_path):
    datamodule, model = _model(tmp_path)
    probe = FreezeProbe()
    _fit(model, datamodule, steps=2, callbacks=[FreezeHeapDuringFit(), probe])
    assert probe.frozen > 10_000  # the modules, configs and tensors of the setup
    assert gc.get_freeze_count() == 0  # a next job in this process can collect them


class RecordedProgressBar(ProgressBar):
    """Records the count the training bar shows at each of its updates."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.train_counts: list[int] = []

    def _update(self, progress_bar_id, current, visible=True, hard=False):
        super()._update(progress_bar_id, current, visible, hard)
        if progress_bar_id is not None and progress_bar_id == self.train_progress_bar_id:
            self.train_counts.append(current)


def test_progress_bar_updates_every_n_batches_and_shows_the_true_count_at_each_epoch_end(tmp_path):
    # 2000 synthetic examples in batches of 300: epochs of 7 batches; 17 steps stop mid-epoch 3.
    datamodule, model = _model(tmp_path, "data.module.batch_size=300", "steps_per_call=1")
    bar = RecordedProgressBar(update_every=5)
    trainer = _fit(model, datamodule, steps=17, callbacks=[bar], progress_bar=True)
    assert trainer.global_step == 17
    # Updates at batch 5 and at the last batch of each epoch (3 in the cut-short third), and once
    # more at each epoch's end.
    assert bar.train_counts == [5, 7, 7, 5, 7, 7, 3, 3]


def test_progress_bar_rejects_a_non_positive_update_interval():
    with pytest.raises(ValueError, match="update_every=0"):
        ProgressBar(update_every=0)


def test_steps_per_call_trains_exactly_as_one_batch_per_call_and_stops_at_max_steps(tmp_path):
    # Epochs of 7 batches (batch 300): groups of 3, 3 and 1; 16 steps stop inside a group of epoch 3.
    trained = {}
    for steps_per_call in (1, 3):
        torch.manual_seed(0)
        datamodule, model = _model(tmp_path, "data.module.batch_size=300", f"steps_per_call={steps_per_call}")
        trainer = _fit(model, datamodule, steps=16)
        assert trainer.global_step == 16
        assert trainer.num_training_batches == -(-7 // steps_per_call)
        trained[steps_per_call] = model.state_dict()
    assert trained[1].keys() == trained[3].keys()
    for name, value in trained[1].items():
        assert torch.equal(value, trained[3][name]), name


def test_a_non_finite_per_example_likelihood_makes_the_reported_mean_nan_not_the_mean_of_the_rest(
    tmp_path, monkeypatch
):
    datamodule, model = _model(tmp_path, "eval.iw_samples_test=5", "eval.hole_samples=0")
    real = model.log_likelihood

    def one_broken_estimate(x, q, num_samples):
        values = real(x, q, num_samples)
        return torch.cat([values[:1] * torch.nan, values[1:]])  # as a miscompiled kernel gave

    monkeypatch.setattr(model, "log_likelihood", one_broken_estimate)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, limit_test_batches=2)
    metrics = trainer.test(model, datamodule=datamodule, verbose=False)[0]
    assert torch.isnan(torch.tensor(metrics["test/nll"]))
    assert torch.isfinite(torch.tensor(metrics["test/neg_elbo"]))
