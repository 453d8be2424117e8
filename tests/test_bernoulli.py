"""The Bernoulli likelihood's two forms of log p(x|z): per value (with gradients) and grouped products (without)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vae_lab.likelihoods import BernoulliLikelihood, IndependentBernoulli
from vae_lab.likelihoods.bernoulli import product_group_size

MIN_PROB = 1e-5
MAX_LOGIT = math.log((1 - MIN_PROB) / MIN_PROB)


def reference(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x·l − softplus(l) summed, in float64."""
    logits, x = logits.double(), x.double()
    return (x * logits - F.softplus(logits)).sum(-1)


def confident_logits(*shape: int) -> torch.Tensor:
    """Like a trained decoder's: most pixels near the clamp, some at it."""
    return (torch.randn(*shape) * 8).clamp(-MAX_LOGIT, MAX_LOGIT)


def likely_pixels(logits: torch.Tensor) -> torch.Tensor:
    """Pixels drawn from the logits' own probabilities, as data is for a trained decoder."""
    return torch.bernoulli(torch.sigmoid(logits))


def test_group_size_keeps_products_in_the_normal_range():
    assert product_group_size(MIN_PROB, torch.float32) == 7  # 1e35 < float32's largest 3.4e38
    assert MIN_PROB**-7 < torch.finfo(torch.float32).max < MIN_PROB**-8
    assert product_group_size(MIN_PROB, torch.float64) == 61
    assert product_group_size(MIN_PROB, torch.float16) == 1  # no product form: the per-value sum
    assert product_group_size(MIN_PROB, torch.bfloat16) == 1
    assert product_group_size(0.0, torch.float32) == 1


@pytest.mark.parametrize("dim", [784, 10, 3])  # 784 = 7 × 112; 10 and 3 leave a tail shorter than a group
def test_grouped_products_match_the_per_value_sum_without_gradients(dim):
    torch.manual_seed(0)
    logits = confident_logits(50, 20, dim)
    x = likely_pixels(logits[0])
    exact = reference(logits, x)
    grouped = IndependentBernoulli(logits, MIN_PROB).log_prob(x)
    per_value = (x * logits - F.softplus(logits)).sum(-1)  # the float32 per-value form
    assert grouped.shape == (50, 20)
    grouped_error, per_value_error = (grouped.double() - exact).abs(), (per_value.double() - exact).abs()
    assert (grouped_error / exact.abs().clamp_min(1.0)).max() < 1e-6  # float32 rounding of the sum
    assert grouped_error.mean() <= per_value_error.mean() * 1.5  # at least about as accurate


def test_pixels_all_at_the_clamp_do_not_underflow():
    """The least probable value a pixel can take, 1e-5, in every pixel: products of 7 stay normal."""
    logits = torch.full((3, 784), MAX_LOGIT)
    x = torch.zeros(3, 784)
    value = IndependentBernoulli(logits, MIN_PROB).log_prob(x)
    torch.testing.assert_close(value.double(), reference(logits, x), rtol=1e-6, atol=0)


def test_with_gradients_the_per_value_form_and_its_gradient():
    torch.manual_seed(1)
    logits = confident_logits(4, 30).requires_grad_()
    x = torch.bernoulli(torch.full((4, 30), 0.5))
    value = IndependentBernoulli(logits, MIN_PROB).log_prob(x)
    assert torch.equal(value, (x * logits - F.softplus(logits)).sum(-1))
    value.sum().backward()
    torch.testing.assert_close(logits.grad, x - torch.sigmoid(logits.detach()))


def test_likelihood_scores_the_same_with_and_without_gradients():
    torch.manual_seed(2)
    likelihood = BernoulliLikelihood(in_features=8, dim=784)
    features = torch.randn(16, 8) * 3
    x = likely_pixels(likelihood(features).logits.detach())
    with_gradients = likelihood(features).log_prob(x)
    with torch.no_grad():
        without = likelihood(features).log_prob(x)
    torch.testing.assert_close(without, with_gradients.detach(), atol=0, rtol=1e-5)


def test_mean_and_samples():
    logits = torch.tensor([[-MAX_LOGIT, 0.0, MAX_LOGIT]])
    px = IndependentBernoulli(logits, MIN_PROB)
    torch.testing.assert_close(px.mean, torch.sigmoid(logits))
    samples = px.sample((2000,))
    assert samples.shape == (2000, 1, 3)
    assert samples[..., 0].sum() == 0 and samples[..., 2].sum() > 1990
    assert abs(samples[..., 1].mean().item() - 0.5) < 0.05
