"""vae_lab.distributions.logsumexp: torch.logsumexp's values and gradients, on the fast path for underflowing terms."""

import math

import pytest
import torch

from vae_lab.distributions.logsumexp import FLOOR, logsumexp


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_equals_torch_where_most_terms_underflow(dtype, dim):
    # Log-densities spread over hundreds of nats: most shifted terms lie far below FLOOR.
    x = (torch.randn(64, 500, generator=torch.Generator().manual_seed(0)) * 60 - 100).to(dtype)
    assert ((x - x.amax(dim, keepdim=True)) < FLOOR).float().mean() > 0.5
    assert torch.equal(logsumexp(x, dim), torch.logsumexp(x, dim))


def test_infinite_and_nan_rows_and_masked_terms_as_torch():
    inf, nan = math.inf, math.nan
    x = torch.tensor([[0.0, -inf, 1.0], [-inf, -inf, -inf], [inf, 1.0, 2.0], [nan, 1.0, 2.0], [-inf, 3.0, -inf]])
    torch.testing.assert_close(logsumexp(x, 1), torch.logsumexp(x, 1), equal_nan=True)
    torch.testing.assert_close(logsumexp(x, 0), torch.logsumexp(x, 0), equal_nan=True)


def test_gradient_is_the_softmax():
    x = (torch.randn(6, 200, dtype=torch.float64) * 40).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: logsumexp(t, 1), (x,))
    (ours,) = torch.autograd.grad(logsumexp(x, 1).sum(), x)
    torch.testing.assert_close(ours, torch.softmax(x.detach(), 1), rtol=0, atol=1e-12)


def test_half_precision_falls_back_to_torch():
    x = torch.randn(4, 50).to(torch.bfloat16) * 30
    assert torch.equal(logsumexp(x, 1), torch.logsumexp(x, 1))
