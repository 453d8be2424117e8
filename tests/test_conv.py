"""Convolutional encoder and decoder for 28×28 images, and the likelihoods' per-pixel head."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from tests.conftest import compose_config
from vae_lab.likelihoods.base import PixelwiseLinear
from vae_lab.nets.conv import ConvDecoder, ConvEncoder, ResidualBlock


@pytest.mark.parametrize("layers_per_scale", [1, 2, 3, 4, 5])
def test_conv_nets_map_28x28_images_to_the_latent_and_back(tmp_path, layers_per_scale):
    overrides = ["data=fashion_mnist_continuous", "encoder=conv", "decoder=conv", "latent=8"]
    overrides += [f"encoder.layers_per_scale={layers_per_scale}", f"decoder.layers_per_scale={layers_per_scale}"]
    cfg = compose_config(overrides, tmp_path)
    encoder, decoder = instantiate(cfg.encoder), instantiate(cfg.decoder)
    latent, likelihood = instantiate(cfg.prior), instantiate(cfg.likelihood)
    x = torch.rand(3, 784)
    q = latent.posterior(encoder(x))
    px = likelihood(decoder(q.rsample((2,))))  # two samples per image: leading dimensions broadcast
    assert q.batch_shape == (3,) and px.mean.shape == (2, 3, 784) and px.log_prob(x).shape == (2, 3)
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in encoder.modules())
    assert convs == 1 + 2 * layers_per_scale  # the stem, then layers_per_scale per scale
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in decoder.modules()) == 2


def test_residual_blocks_hold_their_convs_behind_an_identity_skip():
    encoder = ConvEncoder(784, hidden=16, channels=4, layers_per_scale=3, residual_blocks=2)
    blocks = [m for m in encoder.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 4 and all(sum(isinstance(c, torch.nn.Conv2d) for c in b.modules()) == 3 for b in blocks)
    for p in blocks[0].parameters():
        p.data.zero_()
    h = torch.randn(2, 4, 28, 28)
    torch.testing.assert_close(blocks[0](h), h)
    decoder = ConvDecoder(5, channels=4, layers_per_scale=2, residual_blocks=1)
    assert decoder(torch.randn(7, 5)).shape == (7, 4 * 784)


def test_the_per_pixel_head_is_one_linear_map_shared_by_every_pixel():
    torch.manual_seed(0)
    head = PixelwiseLinear(in_features=3 * 10, dim=10, outputs_per_pixel=2)
    features = torch.randn(4, 3 * 10)
    out = head(features)
    by_hand = torch.einsum("bcd,kc->bkd", features.reshape(4, 3, 10), head.linear.weight) + head.linear.bias[:, None]
    torch.testing.assert_close(out, by_hand.reshape(4, 20))
    with pytest.raises(ValueError, match="not a whole number per pixel"):
        PixelwiseLinear(31, 10)


def test_bad_conv_settings_are_refused():
    with pytest.raises(ValueError, match="layers_per_scale >= 1"):
        ConvEncoder(784, layers_per_scale=0)
    with pytest.raises(ValueError, match="not a square"):
        ConvEncoder(560)
    with pytest.raises(ValueError, match="hidden must be"):
        ConvDecoder(5, channels=4, hidden=100)
