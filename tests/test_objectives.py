"""Objectives: β schedules, free bits (both modes), and the ELBO path's arithmetic."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Independent, Normal

from vae_lab.latents.base import CapabilityError
from vae_lab.latents.gaussian import GaussianLatent
from vae_lab.latents.vamp import VampPriorLatent
from vae_lab.latents.vmf import VonMisesFisherLatent
from vae_lab.objectives import ELBO, FreeBitsELBO, Terms
from vae_lab.objectives.schedules import BetaSchedule


def test_linear_warmup_counts_epochs_from_one_and_caps_at_beta():
    schedule = BetaSchedule("linear", beta=0.5, warmup=4)
    assert [schedule(step=0, epoch=e) for e in range(6)] == [0.125, 0.25, 0.375, 0.5, 0.5, 0.5]
    assert BetaSchedule("linear", warmup=0)(step=7, epoch=0) == 1.0


def test_constant_schedule_ignores_warmup_and_steps():
    schedule = BetaSchedule("constant", beta=0.2, warmup=10)
    assert {schedule(step=s, epoch=e) for s, e in [(0, 0), (500, 3), (10**6, 99)]} == {0.2}


def test_cyclic_schedule_ramps_over_ratio_of_each_period_then_holds():
    # 100 steps, 4 cycles: periods of 25 steps; β rises over the first 12.5 steps of each.
    schedule = BetaSchedule("cyclic", beta=1.0, cycles=4, ratio=0.5)
    beta = [schedule(step=s, epoch=0, total_steps=100) for s in range(100)]
    assert beta[0] == 0.0 and beta[25] == 0.0 and beta[50] == 0.0 and beta[75] == 0.0
    assert beta[5] == pytest.approx(0.4) and beta[30] == pytest.approx(0.4)
    assert beta[12] == pytest.approx(12 / 12.5) and beta[13] == 1.0 and beta[24] == 1.0
    assert all(b2 >= b1 for b1, b2 in zip(beta[:24], beta[1:25], strict=True))  # rises within a cycle
    with pytest.raises(ValueError, match="cyclic needs the run's length"):
        schedule(step=3, epoch=0, total_steps=None)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"schedule": "sawtooth"}, "expected one of constant, linear, cyclic"),
        ({"warmup": "ten"}, "objective.warmup='ten'"),
        ({"warmup": -1}, "objective.warmup=-1"),
        ({"ratio": 0}, "objective.ratio=0"),
        ({"beta": -0.1}, "objective.beta=-0.1"),
    ],
)
def test_bad_schedule_values_are_refused_with_their_key(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ELBO(**kwargs)


def _gaussian_terms(mean: torch.Tensor, log_std: torch.Tensor) -> Terms:
    latent = GaussianLatent(in_features=1, latent_dim=mean.shape[-1])
    q = Independent(Normal(mean, log_std.exp()), 1)
    p = latent.prior()
    z = q.rsample()
    log_px = torch.zeros(mean.shape[0])
    return Terms(q=q, p=p, z=z, log_px=log_px, kl=latent.kl(q, p, z), latent=latent)


def _kl_gradients(objective, mean, log_std):
    mean = mean.clone().requires_grad_()
    log_std = log_std.clone().requires_grad_()
    objective(_gaussian_terms(mean, log_std), 1.0).loss.mean().backward()
    return mean.grad, log_std.grad


def test_free_bits_batch_mode_floors_each_dimensions_batch_mean_kl():
    # 3 examples, 4 dimensions: dims 0, 1 near the prior (KL ≈ 0), dims 2, 3 far from it.
    mean = torch.tensor([[0.01, 0.0, 2.0, -3.0], [0.0, -0.01, 2.5, -2.0], [0.02, 0.01, 1.5, -2.5]])
    log_std = torch.zeros(3, 4)
    target = 2.0  # λ = 0.5 nats per dimension
    free_bits = FreeBitsELBO(target=target, mode="batch", latent_dim=4)
    terms = _gaussian_terms(mean, log_std)
    kl_d = terms.kl_per_dimension().mean(0)
    expected = torch.clamp(kl_d, min=0.5).sum()
    torch.testing.assert_close(free_bits(terms, 1.0).loss.mean(), expected)

    grad_mean, _ = _kl_gradients(free_bits, mean, log_std)
    plain_mean, _ = _kl_gradients(ELBO(), mean, log_std)
    assert torch.equal(grad_mean[:, :2], torch.zeros(3, 2))  # below λ: no KL gradient
    torch.testing.assert_close(grad_mean[:, 2:], plain_mean[:, 2:])  # above: the ordinary one


def test_free_bits_example_mode_masks_each_example_and_dimension():
    # Dimension 0 is below λ = 0.5 for example 0 only; dimension 1 is above for every example.
    mean = torch.tensor([[0.1, 2.0], [1.5, 2.0]])
    log_std = torch.zeros(2, 2)
    free_bits = FreeBitsELBO(target=1.0, mode="example", latent_dim=2)
    grad_mean, _ = _kl_gradients(free_bits, mean, log_std)
    plain_mean, _ = _kl_gradients(ELBO(), mean, log_std)
    assert grad_mean[0, 0] == 0  # KL_{0,0} = 0.005 < λ: masked
    torch.testing.assert_close(grad_mean[1, 0], plain_mean[1, 0])  # KL_{1,0} = 1.125 > λ: counted
    torch.testing.assert_close(grad_mean[:, 1], plain_mean[:, 1])
    terms = _gaussian_terms(mean, log_std)
    torch.testing.assert_close(free_bits(terms, 1.0).loss, torch.tensor([2.0, 1.125 + 2.0]))


def test_free_bits_refuse_families_without_a_per_dimension_kl():
    free_bits = FreeBitsELBO(target=4, latent_dim=4)
    free_bits.check(GaussianLatent(8, 4))  # has one
    for family in (VampPriorLatent(8, 4, data_dim=6, components=3), VonMisesFisherLatent(8, 4)):
        with pytest.raises(CapabilityError, match=f"FreeBitsELBO needs a closed-form per-dimension KL.*{family.name}"):
            free_bits.check(family)


def test_elbo_with_beta_one_trains_bit_identically_to_the_hand_written_elbo(tmp_path):
    """The seam (terms → objective → per-example loss → mean) adds no arithmetic: 5 steps of
    the default model through the Trainer equal a hand-written loop of −log p(x|z) + KL."""
    from tests.test_training_step import _fit, _model

    datamodule, model = _model(tmp_path, "warmup=0")
    _, reference = _model(tmp_path, "warmup=0")
    reference.load_state_dict(model.state_dict())
    batches = [x for group, _ in datamodule.train_dataloader() for x in group][:5]

    _fit(model, datamodule, steps=5)
    optimizer = reference.configure_optimizers()
    torch.manual_seed(model.eval_seed)  # where the model starts its training noise (on_train_start)
    for x in batches:
        q = reference.posterior(x)
        z = q.rsample()
        log_px = reference.decode(z).log_prob(x)
        kl = torch.distributions.kl_divergence(q, reference.prior())
        optimizer.zero_grad()
        (1.0 * kl - log_px).mean().backward()
        optimizer.step()
    for (name, a), b in zip(model.named_parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b), name
