"""VampPrior: its mixture density, the matmul form, gradients, sampling, data init and IW bounds."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from tests.conftest import compose_config
from vae_lab.callbacks.data_init import DataDependentInit
from vae_lab.config import CONF_DIR
from vae_lab.distributions.gaussian_mixture import DiagonalGaussianMixture
from vae_lab.latents.vamp import VampPriorLatent
from vae_lab.likelihoods import BernoulliLikelihood, DiscretizedLogisticLikelihood
from vae_lab.metrics.likelihood import importance_sampled_log_likelihood
from vae_lab.nets.mlp import GatedMLP
from vae_lab.train import run

DIM, HIDDEN, LATENT, K = 12, 16, 3, 5


def tiny_vamp_vae(likelihood=BernoulliLikelihood, components=K, dtype=torch.float32):
    torch.manual_seed(1)
    encoder, decoder = GatedMLP(DIM, HIDDEN, 1), GatedMLP(LATENT, HIDDEN, 1)
    latent = VampPriorLatent(HIDDEN, LATENT, DIM, components=components, init_mean=0.5, init_std=0.2)
    head = likelihood(HIDDEN, DIM)
    parts = [m.to(dtype) for m in (encoder, latent, decoder, head)]
    return (*parts, lambda x: latent.posterior(encoder(x)))


def broadcast_component_log_prob(loc, scale, z):
    """The textbook form: an (N, K, L) broadcast of per-dimension Gaussian log-densities."""
    return Normal(loc, scale).log_prob(z.unsqueeze(-2)).sum(-1)


def random_mixture(n=64, k=7, latent=4, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    loc = torch.randn(k, latent, generator=g, dtype=dtype)
    # log σ² over the VampPrior's whole range [−6, 2]: the hardest case for the expanded square.
    scale = torch.exp(0.5 * (torch.rand(k, latent, generator=g, dtype=dtype) * 8 - 6))
    z = loc[torch.randint(k, (n,), generator=g)] + torch.randn(n, latent, generator=g, dtype=dtype)
    return loc.requires_grad_(), scale.requires_grad_(), z.requires_grad_()


def test_prior_log_density_equals_direct_average_of_component_densities():
    encoder, latent, _, _, posterior_fn = tiny_vamp_vae(dtype=torch.float64)
    z = torch.randn(2, 6, LATENT, dtype=torch.float64)  # (S, B, L): leading sample dims
    with torch.no_grad():
        components = posterior_fn(latent.pseudo_inputs)
        loc, sd = components.mean, components.stddev
        direct = torch.zeros(2, 6, dtype=torch.float64)
        for k in range(K):  # (1/K) Σ_k Π_l N(z_l; μ_kl, σ_kl), no log-sum-exp
            density = torch.exp(-0.5 * ((z - loc[k]) / sd[k]) ** 2) / (sd[k] * math.sqrt(2 * math.pi))
            direct += density.prod(-1) / K
        torch.testing.assert_close(latent.prior(posterior_fn).log_prob(z), direct.log())


def test_prior_is_the_gaussian_mixture_it_defines():
    _, latent, _, _, posterior_fn = tiny_vamp_vae()
    z = torch.randn(10, LATENT)
    with torch.no_grad():
        components = posterior_fn(latent.pseudo_inputs)
        reference = MixtureSameFamily(
            Categorical(logits=torch.zeros(K)), Independent(Normal(components.mean, components.stddev), 1)
        )
        torch.testing.assert_close(latent.prior(posterior_fn).log_prob(z), reference.log_prob(z))


def test_gradients_reach_the_pseudo_inputs_and_the_shared_encoder():
    encoder, latent, _, _, posterior_fn = tiny_vamp_vae()
    latent.prior(posterior_fn).log_prob(torch.randn(8, LATENT)).sum().backward()
    inside = (latent.pseudo_input_weight > 0) & (latent.pseudo_input_weight < 1)  # Hardtanh passes these
    assert inside.any()
    assert (latent.pseudo_input_weight.grad[inside] != 0).all()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())


def test_pseudo_inputs_stay_in_the_data_range():
    latent = VampPriorLatent(HIDDEN, LATENT, DIM, components=K, init_mean=0.5, init_std=1.0)
    assert latent.pseudo_inputs.min() >= 0 and latent.pseudo_inputs.max() <= 1
    assert (latent.pseudo_input_weight < 0).any() or (latent.pseudo_input_weight > 1).any()


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 2e-4)])
def test_matmul_form_equals_broadcast_form_values_and_gradients(dtype, tol):
    results = []
    for form in ("matmul", "broadcast"):
        loc, scale, z = random_mixture(dtype=dtype)
        if form == "matmul":
            components = DiagonalGaussianMixture(loc, scale).component_log_prob(z)
        else:
            components = broadcast_component_log_prob(loc, scale, z)
        mixture = torch.logsumexp(components, -1)
        (components.sum() + mixture.sum()).backward()
        results.append([components, mixture, loc.grad, scale.grad, z.grad])
    for ours, textbook in zip(*results, strict=True):
        assert ours.dtype == dtype
        torch.testing.assert_close(ours, textbook, rtol=tol, atol=tol * textbook.abs().max().item())


def test_mixture_log_prob_is_fp32_under_bf16_autocast():
    loc, scale, z = (t.detach() for t in random_mixture())
    mixture = DiagonalGaussianMixture(loc, scale)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = mixture.log_prob(z)
    assert under_autocast.dtype == torch.float32
    torch.testing.assert_close(under_autocast, mixture.log_prob(z))


def test_samples_come_from_the_pseudo_input_posteriors():
    loc = torch.tensor([[-5.0, 0.0], [5.0, 1.0]])
    mixture = DiagonalGaussianMixture(loc, torch.full_like(loc, 0.1))
    torch.manual_seed(0)
    z = mixture.sample((4000,))
    assert z.shape == (4000, 2)
    near_first = (z[:, 0] < 0).float().mean()
    assert abs(near_first - 0.5) < 0.04  # equal weights
    torch.testing.assert_close(z.mean(0), mixture.mean, atol=0.2, rtol=0)
    torch.testing.assert_close(z.var(0), mixture.variance, atol=0.6, rtol=0.05)


def test_kl_falls_back_to_the_one_sample_estimate():
    encoder, latent, _, _, posterior_fn = tiny_vamp_vae()
    x = torch.rand(4, DIM)
    q, p = posterior_fn(x), latent.prior(posterior_fn)
    z = q.rsample()
    torch.testing.assert_close(latent.kl(q, p, z), q.log_prob(z) - p.log_prob(z))


@pytest.mark.parametrize("likelihood", [BernoulliLikelihood, DiscretizedLogisticLikelihood])
def test_importance_sampled_nll_is_finite_tighter_than_elbo_and_chunk_independent(likelihood):
    encoder, latent, decoder, head, posterior_fn = tiny_vamp_vae(likelihood)
    x = torch.bernoulli(torch.full((32, DIM), 0.4))
    if likelihood is DiscretizedLogisticLikelihood:
        x = (torch.randint(0, 256, (32, DIM)) + 0.5) / 256
    with torch.no_grad():
        q, p = posterior_fn(x), latent.prior(posterior_fn)

        def log_px(z):
            return head(decoder(z)).log_prob(x)

        torch.manual_seed(0)
        z = q.sample((300,))
        elbo = (log_px(z) + p.log_prob(z) - q.log_prob(z)).mean()
        bounds = []
        for chunk in (17, 200):
            torch.manual_seed(5)
            bounds.append(importance_sampled_log_likelihood(q, p, log_px, 200, chunk))
    assert torch.isfinite(bounds[0]).all()
    torch.testing.assert_close(bounds[0], bounds[1])
    assert bounds[0].mean() >= elbo


def test_data_init_copies_training_images_once_and_survives_a_checkpoint():
    latent = VampPriorLatent(HIDDEN, LATENT, DIM, components=4, init="data", init_std=0.01)
    module = SimpleNamespace(latent=latent)  # stands in for the LightningModule
    train = torch.rand(10, DIM)
    trainer = SimpleNamespace(datamodule=SimpleNamespace(splits=SimpleNamespace(train=train)))
    DataDependentInit().on_fit_start(trainer, module)
    torch.testing.assert_close(latent.pseudo_input_weight, train[:4], atol=0.05, rtol=0)
    assert 0 < (latent.pseudo_input_weight - train[:4]).abs().max() < 0.05  # noise was added
    state = latent.state_dict()
    resumed = VampPriorLatent(HIDDEN, LATENT, DIM, components=4, init="data")
    resumed.load_state_dict(state)
    DataDependentInit().on_fit_start(
        SimpleNamespace(datamodule=SimpleNamespace(splits=SimpleNamespace(train=train * 0))),
        SimpleNamespace(latent=resumed),
    )
    torch.testing.assert_close(resumed.pseudo_input_weight, latent.pseudo_input_weight)


def test_paper_init_is_left_alone_by_the_data_init_callback():
    latent = VampPriorLatent(HIDDEN, LATENT, DIM, components=300, init_mean=0.05, init_std=0.01)
    before = latent.pseudo_input_weight.detach().clone()
    latent.initialise_from_data(torch.ones(400, DIM))
    torch.testing.assert_close(latent.pseudo_input_weight, before)
    assert abs(before.mean() - 0.05) < 0.001 and abs(before.std() - 0.01) < 0.001


def test_bad_settings_say_what_to_change():
    with pytest.raises(ValueError, match="prior.components=0"):
        VampPriorLatent(HIDDEN, LATENT, DIM, components=0)
    with pytest.raises(ValueError, match="prior.init='images'"):
        VampPriorLatent(HIDDEN, LATENT, DIM, init="images")
    with pytest.raises(ValueError, match="needs 5 training examples"):
        VampPriorLatent(HIDDEN, LATENT, DIM, components=5, init="data").initialise_from_data(torch.rand(3, DIM))


@pytest.mark.parametrize("experiment", ["vampprior_mnist", "vampprior_frey", "vampprior_frey_arch"])
def test_experiments_carry_the_paper_protocol_and_their_grid(experiment, tmp_path):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    assert cfg.prior._target_ == "vae_lab.latents.vamp.VampPriorLatent" and cfg.prior.components == 500
    assert cfg.optimizer._target_ == "vae_lab.optim.AdamNormGrad" and cfg.optimizer.lr == 5e-4
    assert cfg.data.module.batch_size == 100 and cfg.warmup == 100 and cfg.eval_ckpt == "best"
    assert cfg.eval.iw_samples_test == 5000
    stopping = cfg.callbacks.early_stopping
    assert (stopping.monitor, stopping.patience, stopping.warmup_epochs) == ("val/neg_elbo", 50, 100)
    frey = experiment != "vampprior_mnist"
    assert cfg.data.name == ("frey" if frey else "mnist")
    assert cfg.prior.init_mean == (0.5 if frey else 0.05) and cfg.prior.init_std == (0.02 if frey else 0.01)
    grid = dict(cfg.hydra.sweeper.params)
    if experiment == "vampprior_frey_arch":
        assert grid == {
            "prior": "vamp",
            "latent": "40",
            "hidden": "300,600",
            "prior.components": "100,500,1000",
        }
    else:
        assert grid == {"prior": "gauss,vamp", "latent": "10,40,100"}


def test_one_epoch_run_with_data_init_writes_the_report_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    overrides = ["data=synthetic", "prior=vamp", "prior.init=data", "prior.components=20", "latent=4"]
    overrides += ["trainer.max_epochs=1", "eval.iw_samples_val=0", "eval.iw_samples_test=10"]
    cfg = compose_config([*overrides, "data.module.limit_train=200", "data.module.limit_test=100"], tmp_path)
    metrics = run(cfg)
    assert math.isfinite(metrics["test/nll"]) and metrics["test/nll"] <= metrics["test/neg_elbo"] + 1e-3
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["state_dict"]["latent.data_initialised"]
    media = tmp_path / "media"
    assert (media / "pseudo_inputs_test.png").exists() and (media / "test_log_likelihoods.png").exists()
    assert np.load(media / "test_log_likelihoods.npy").shape == (100,)
