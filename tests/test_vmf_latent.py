"""Hyperspherical latent families inside the VAE: learned / fixed κ, every decoder, IW NLL."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from tests.conftest import cli_in_process, needs_real_data
from vae_lab.latents.base import CapabilityError
from vae_lab.latents.vmf import PowerSphericalLatent, VonMisesFisherLatent
from vae_lab.likelihoods import BernoulliLikelihood, DiscretizedLogisticLikelihood
from vae_lab.metrics.likelihood import importance_sampled_log_likelihood
from vae_lab.nets.mlp import GatedMLP


@pytest.mark.parametrize("family", [VonMisesFisherLatent, PowerSphericalLatent])
def test_latent_below_two_is_rejected(family):
    with pytest.raises(ValueError, match="latent=1: .*needs latent >= 2"):
        family(in_features=8, latent_dim=1)


@pytest.mark.parametrize("kappa", [0.0, -3.0])
def test_non_positive_fixed_kappa_is_rejected(kappa):
    with pytest.raises(ValueError, match="must be > 0"):
        VonMisesFisherLatent(in_features=8, latent_dim=5, kappa=kappa)


def test_fixed_kappa_gives_a_constant_kl_and_has_no_kappa_head():
    family = VonMisesFisherLatent(in_features=8, latent_dim=5, kappa=80.0)
    assert family.kappa_head is None
    q = family.posterior(torch.randn(6, 8))
    z, sample_info = family.rsample(q)
    assert sample_info is None  # fixed κ: nothing to correct
    kl = family.kl(q, family.prior(), z)
    assert kl.shape == (6,) and torch.allclose(kl, kl[0].expand(6))
    assert kl[0] > 0


@pytest.mark.parametrize("family_cls", [VonMisesFisherLatent, PowerSphericalLatent])
@pytest.mark.parametrize("head_cls", [BernoulliLikelihood, DiscretizedLogisticLikelihood])
def test_importance_sampled_bound_is_finite_and_above_the_elbo(family_cls, head_cls):
    torch.manual_seed(0)
    encoder, decoder = GatedMLP(16, 32, 1), GatedMLP(6, 32, 1)
    family, head = family_cls(32, 6), head_cls(32, 16)
    x = (
        torch.bernoulli(torch.full((64, 16), 0.3))
        if head_cls is BernoulliLikelihood
        else (torch.randint(0, 256, (64, 16)) + 0.5) / 256
    )
    with torch.no_grad():
        q, p = family.posterior(encoder(x)), family.prior()

        def log_px(z):
            return head(decoder(z)).log_prob(x)

        z = q.sample((200,))
        elbo = (log_px(z) - family.kl(q, p, z[0])).mean()
        bound = importance_sampled_log_likelihood(q, p, log_px, 200, chunk_size=50).mean()
    assert torch.isfinite(bound) and bound > elbo


def test_gradient_correction_changes_only_the_kappa_gradient():
    torch.manual_seed(0)
    h = torch.randn(32, 8)
    grads = {}
    for corrected in (False, True):
        family = VonMisesFisherLatent(8, 5, grad_correction=corrected)
        torch.manual_seed(1)
        family.load_state_dict(VonMisesFisherLatent(8, 5).state_dict())
        torch.manual_seed(2)
        q = family.posterior(h)
        z, sample_info = family.rsample(q)
        assert (sample_info is not None) == corrected  # the log weight travels beside z
        sample_loss = (z[:, 0] - 0.3) ** 2
        correction = family.gradient_correction(q, sample_info, sample_loss)
        assert (correction is not None) == corrected
        loss = sample_loss.mean() + (correction.mean() if correction is not None else 0.0)
        loss.backward()
        grads[corrected] = (
            loss.item(),
            family.kappa_head.weight.grad.clone(),
            family.loc_head.weight.grad.clone(),
        )
    assert grads[True][0] == pytest.approx(grads[False][0])  # zero in value
    assert not torch.allclose(grads[True][1], grads[False][1])  # κ gradient corrected
    torch.testing.assert_close(grads[True][2], grads[False][2])  # μ gradient untouched


@pytest.mark.parametrize("family_cls", [VonMisesFisherLatent, PowerSphericalLatent])
def test_spherical_families_declare_their_capabilities(family_cls):
    family = family_cls(8, 5)
    assert family.has_density and family.can_sample_prior and not family.has_kl_per_dimension
    with pytest.raises(CapabilityError):
        family.kl_per_dimension(family.posterior(torch.randn(2, 8)), family.prior())


def test_corrected_and_plain_sampling_draw_the_same_z():
    h = torch.randn(16, 8)
    drawn = {}
    for corrected in (False, True):
        torch.manual_seed(3)
        family = VonMisesFisherLatent(8, 7, grad_correction=corrected)
        torch.manual_seed(4)
        drawn[corrected] = family.rsample(family.posterior(h))
    assert torch.equal(drawn[True][0], drawn[False][0])
    assert drawn[False][1] is None and drawn[True][1].shape == (16,)


@pytest.mark.parametrize(
    ("family", "why"),
    [
        (VonMisesFisherLatent(8, 5, kappa=20.0, grad_correction=True), "fixed κ: nothing to correct"),
        (PowerSphericalLatent(8, 5), "sampled without rejection"),
    ],
)
def test_no_gradient_correction_where_there_is_nothing_to_correct(family, why):
    q = family.posterior(torch.randn(4, 8))
    z, sample_info = family.rsample(q)
    assert z.shape == (4, 5) and sample_info is None, why
    assert family.gradient_correction(q, sample_info, z.sum(-1)) is None, why


@needs_real_data
@pytest.mark.slow
def test_short_svae_training_on_real_mnist_decreases_and_stays_finite(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    code, out = cli_in_process(
        [
            "prior=vmf",
            "latent=10",
            "data.module.limit_train=3000",
            "data.module.limit_valid=200",
            "data.module.limit_test=200",
            "trainer.max_epochs=3",
            "warmup=0",
            "trainer.log_every_n_steps=5",
            "eval.iw_samples_val=5",
            "eval.iw_samples_test=20",
            f"hydra.run.dir={run_dir}",
        ],
        tmp_path,
        monkeypatch,
        capsys,
    )
    assert code == 0, out
    with open(run_dir / "csv" / "metrics.csv") as f:
        losses = [float(row["train/loss"]) for row in csv.DictReader(f) if row.get("train/loss")]
    assert len(losses) >= 8 and all(torch.isfinite(torch.tensor(losses)))  # every 10 steps of 90
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 20  # nats per image


def test_cli_rejects_a_one_dimensional_sphere(tmp_path, monkeypatch, capsys):
    code, err = cli_in_process(["prior=vmf", "latent=1", "data=synthetic"], tmp_path, monkeypatch, capsys)
    assert code == 2
    assert "needs latent >= 2" in err


@pytest.mark.parametrize(("data", "kappa"), [("mnist", None), ("ptb", 80), ("20ng", 100)])
def test_vmf_concentration_defaults_follow_the_data(tmp_path, data, kappa):
    """Images: learned κ (S-VAE). Text: Xu & Durrett's fixed κ, still overridable."""
    from vae_lab.config import compose_train_config

    assert compose_train_config(["prior=vmf", f"data={data}"], tmp_path).prior.kappa == kappa
    assert compose_train_config(["prior=vmf", f"data={data}", "prior.kappa=35"], tmp_path).prior.kappa == 35


def test_vmf_trains_under_bf16_autocast(tmp_path, monkeypatch, capsys):
    """bf16-mixed (what trainer.precision=auto picks on bf16-native CPUs): the spherical families
    sample and take the Bessel-function KL in fp32 inside it (no bf16 Gamma sampler on the CPU)."""
    run = tmp_path / "run"
    args = ["prior=vmf", "latent=5", "data=synthetic", "trainer.precision=bf16-mixed", "trainer.max_epochs=1"]
    code, out = cli_in_process([*args, "eval.iw_samples_test=5", f"hydra.run.dir={run}"], tmp_path, monkeypatch, capsys)
    assert code == 0, out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["precision"] == "bf16-mixed"
    assert all(math.isfinite(metrics["metrics"][f"test/{name}"]) for name in ("neg_elbo", "kl", "nll"))
