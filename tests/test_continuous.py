"""Continuous data: the Gaussian likelihood with a scalar variance γ, grey-scale image data, and
the MLP's depth / width / activation / residual options (the posterior-collapse diagnostics' parts)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal

from tests.conftest import compose_config, data_root
from vae_lab.latents.gaussian import GaussianLatent
from vae_lab.likelihoods.gaussian import GaussianLikelihood
from vae_lab.nets.mlp import MLP, GatedMLP, ReLUDense, Residual


def test_gaussian_log_density_is_the_sum_of_normals_with_variance_gamma():
    torch.manual_seed(0)
    likelihood = GaussianLikelihood(in_features=5, dim=7, learn_variance=False, gamma=0.3)
    features, x = torch.randn(4, 5), torch.rand(4, 7)
    px = likelihood(features)
    expected = Normal(likelihood.head(features), math.sqrt(0.3)).log_prob(x).sum(-1)
    torch.testing.assert_close(px.log_prob(x), expected)
    assert px.log_prob(x.expand(3, 4, 7)).shape == (3, 4)  # broadcasts over importance samples
    assert not likelihood.reports_bits_per_dim and likelihood.fits("continuous") and not likelihood.fits("8bit")


def test_learned_gamma_is_optimal_at_the_mean_squared_error():
    # For fixed decoder means, d/dlog γ of the mean −log p(x|z) vanishes at γ = MSE per dimension.
    torch.manual_seed(1)
    likelihood = GaussianLikelihood(in_features=3, dim=50)
    features, x = torch.randn(64, 3), torch.rand(64, 50)
    mse = float((likelihood.head(features) - x).square().mean())

    def gradient_at(gamma: float) -> float:
        likelihood.log_gamma.data.fill_(math.log(gamma))
        likelihood.log_gamma.grad = None
        (-likelihood(features).log_prob(x).mean()).backward()
        return float(likelihood.log_gamma.grad)

    assert gradient_at(mse) == pytest.approx(0.0, abs=1e-3)
    assert gradient_at(mse / 2) < 0 < gradient_at(mse * 2)  # a minimum, not a maximum
    assert likelihood.training_logs()["gamma"] == pytest.approx(mse * 2)


def test_a_fixed_gamma_is_a_buffer_and_bad_values_are_refused():
    fixed = GaussianLikelihood(in_features=2, dim=3, learn_variance=False, gamma=0.1)
    assert "log_gamma" not in dict(fixed.named_parameters()) and float(fixed.gamma) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="likelihood.gamma=0"):
        GaussianLikelihood(in_features=2, dim=3, gamma=0.0)


@pytest.mark.parametrize("activation, residual", [("gated", False), ("relu", False), ("relu", True), ("gated", True)])
def test_mlp_builds_the_stated_layers_and_skips(activation, residual):
    torch.manual_seed(2)
    net = MLP(in_features=10, hidden=16, depth=4, activation=activation, residual=residual)
    x = torch.randn(3, 2, 10)
    assert len(net.net) == 4 and net(x).shape == (3, 2, 16)
    torch.testing.assert_close(net(x)[1], net(x[1]))  # a batch (2-D) takes the path without reshapes
    skips = [isinstance(layer, Residual) for layer in net.net]
    assert skips == ([False, True, True, True] if residual else [False] * 4)
    inner = [layer.layer if isinstance(layer, Residual) else layer for layer in net.net]
    assert all(isinstance(layer, ReLUDense) == (activation == "relu") for layer in inner)
    if residual:  # the skip is an identity: zeroing a layer's weights leaves its input through
        block = net.net[1]
        for p in block.layer.parameters():
            p.data.zero_()
        h = torch.randn(5, 16)
        torch.testing.assert_close(block(h), h)


def test_the_old_gated_mlp_keys_build_the_same_network():
    torch.manual_seed(3)
    old = GatedMLP(8, 12, layers=3)
    torch.manual_seed(3)
    new = MLP(8, 12, depth=3)
    assert old.state_dict().keys() == new.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(), new.state_dict().values(), strict=True))
    with pytest.raises(ValueError, match="activation='tanh'"):
        MLP(8, 12, activation="tanh")


def test_mlp_widths_layer_by_layer_and_the_soft_threshold_on_its_input():
    net = MLP(784, hidden=128, activation="relu", widths=[256, 128])
    assert [m.out_features for m in net.modules() if isinstance(m, torch.nn.Linear)] == [256, 128]
    with pytest.raises(ValueError, match="ending in hidden=64"):
        MLP(784, hidden=64, widths=[256, 128])
    # depth 0 + soft threshold: the decoder sees sign(z)(|z| − α)₊, so z inside (−α, α) gives 0.
    affine = MLP(3, hidden=3, depth=0, soft_threshold=1.0)
    z = torch.tensor([[0.5, -2.0, 1.5]])
    torch.testing.assert_close(affine(z), torch.tensor([[0.0, -1.0, 0.5]]))


def test_a_zero_initial_scale_starts_every_posterior_at_the_prior():
    latent = GaussianLatent(in_features=6, latent_dim=4, init_scale=0.0)
    q = latent.posterior(torch.randn(8, 6))
    torch.testing.assert_close(q.base_dist.loc, torch.zeros(8, 4))
    torch.testing.assert_close(q.base_dist.scale, torch.ones(8, 4))


@pytest.mark.parametrize("data", ["mnist_continuous", "fashion_mnist_continuous", "frey_continuous"])
def test_continuous_data_selects_the_gaussian_likelihood(tmp_path, data):
    cfg = compose_config(
        [f"data={data}", "encoder.depth=6", "decoder.residual=true", "encoder.activation=relu"], tmp_path
    )
    assert cfg.likelihood._target_ == "vae_lab.likelihoods.gaussian.GaussianLikelihood"
    assert cfg.data.type == "continuous" and cfg.likelihood.learn_variance
    assert (cfg.encoder.depth, cfg.encoder.activation, cfg.decoder.residual) == (6, "relu", True)


@pytest.mark.skipif(data_root() is None, reason="no data root")
def test_continuous_images_keep_their_grey_levels_in_the_unit_interval():
    from vae_lab.data.images import load_frey_continuous, load_mnist_continuous, load_mnist_dynamic

    grey = load_mnist_continuous(data_root())
    assert (len(grey.train), len(grey.valid), len(grey.test)) == (50_000, 10_000, 10_000)
    assert 0 <= float(grey.test.min()) and float(grey.test.max()) <= 1
    assert len(torch.unique(grey.test[:100])) > 100  # grey levels, not bits
    binary = load_mnist_dynamic(data_root())
    assert torch.equal(binary.train, grey.train) and set(torch.unique(binary.test).tolist()) == {0.0, 1.0}
    frey = load_frey_continuous(data_root())
    assert frey.image_shape == (28, 20) and float(frey.train.max()) <= 1
