"""vae_lab's Normal draws exactly what torch's does."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal as TorchNormal

from vae_lab.distributions.normal import Normal


@pytest.mark.parametrize("sample_shape", [(), (3,), (500,)])
@pytest.mark.parametrize("batch", [(2, 3), (100, 40)])  # below and above torch's vectorised-draw size
def test_samples_are_bit_identical_to_torch(sample_shape, batch):
    loc, scale = torch.randn(batch), torch.rand(batch) + 0.1
    torch.manual_seed(7)
    expected = TorchNormal(loc, scale).sample(sample_shape)
    torch.manual_seed(7)
    actual = Normal(loc, scale).sample(sample_shape)
    assert torch.equal(actual, expected)


def test_samples_carry_no_gradient():
    loc = torch.zeros(4, requires_grad=True)
    assert not Normal(loc, torch.ones(4)).sample((2,)).requires_grad
