"""Closed-form and estimator checks of the pieces the ELBO is made of."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from vae_lab.distributions.discretized_logistic import DiscretizedLogistic
from vae_lab.latents.gaussian import GaussianLatent
from vae_lab.likelihoods import BernoulliLikelihood, DiscretizedLogisticLikelihood
from vae_lab.metrics.latent import ActiveUnits
from vae_lab.metrics.likelihood import importance_sampled_log_likelihood
from vae_lab.nets.mlp import GatedMLP
from vae_lab.optim import AdamNormGrad
from vae_lab.rng import normal_in_chunks


def test_gaussian_kl_matches_monte_carlo():
    torch.manual_seed(0)
    latent = GaussianLatent(in_features=8, latent_dim=5)
    q = latent.posterior(torch.randn(3, 8))
    p = latent.prior(None)
    closed_form = kl_divergence(q, p)  # (3,)
    z = q.sample((200_000,))
    monte_carlo = (q.log_prob(z) - p.log_prob(z)).mean(0)
    assert closed_form.shape == (3,)
    torch.testing.assert_close(monte_carlo, closed_form, atol=0.02, rtol=0.01)
    # And the textbook formula.
    mu, sigma = q.base_dist.loc, q.base_dist.scale
    textbook = 0.5 * (mu**2 + sigma**2 - 1 - 2 * torch.log(sigma)).sum(-1)
    torch.testing.assert_close(closed_form, textbook)


def test_gaussian_family_kl_is_torch_kl_bit_for_bit_values_and_gradients():
    """The family's own closed form (no division by the prior's unit scale) computes torch's bits."""
    torch.manual_seed(0)
    latent = GaussianLatent(in_features=8, latent_dim=5)
    h = torch.randn(64, 8)
    h[0, :] = 0.0  # a posterior at the head's bias
    results = []
    for kl in (lambda q, p: latent.kl(q, p, None), kl_divergence):
        latent.zero_grad()
        q = latent.posterior(h)
        value = kl(q, latent.prior(None))
        value.sum().backward()
        results.append((value, [w.grad.clone() for w in latent.parameters()]))
    (ours, ours_grads), (torchs, torch_grads) = results
    assert torch.equal(ours, torchs)
    assert all(torch.equal(a, b) for a, b in zip(ours_grads, torch_grads, strict=True))
    q = latent.posterior(h)
    assert torch.equal(
        latent.kl_per_dimension(q, latent.prior(None)), kl_divergence(q.base_dist, latent.prior().base_dist)
    )


def test_discretized_logistic_bins_sum_to_one():
    bins = (torch.arange(256) + 0.5) / 256  # every possible value
    for loc, log_scale in [(0.5, -2.0), (1 / 512, -4.5), (1 - 1 / 512, 0.0), (0.3, -4.5), (0.9, -1.0)]:
        d = DiscretizedLogistic(torch.tensor(loc), torch.tensor(log_scale))
        total = torch.logsumexp(d.log_prob(bins), 0).exp()
        assert abs(total.item() - 1.0) < 1e-4, (loc, log_scale, total)


def test_discretized_logistic_matches_cdf_difference_in_float64():
    loc, log_scale = torch.tensor(0.4, dtype=torch.float64), torch.tensor(-3.0, dtype=torch.float64)
    d = DiscretizedLogistic(loc, log_scale)
    x = torch.tensor([(100 + 0.5) / 256], dtype=torch.float64)
    cdf = lambda v: torch.sigmoid((v - loc) / log_scale.exp())  # noqa: E731
    expected = torch.log(cdf(x + 1 / 512) - cdf(x - 1 / 512))
    torch.testing.assert_close(d.log_prob(x), expected)


def test_bernoulli_likelihood_matches_torch_distributions():
    torch.manual_seed(0)
    head = BernoulliLikelihood(in_features=6, dim=10)
    features = torch.randn(4, 6)
    x = torch.bernoulli(torch.full((4, 10), 0.3))
    probs = torch.sigmoid(head.head(features)).clamp(1e-5, 1 - 1e-5)
    expected = Independent(Bernoulli(probs=probs), 1).log_prob(x)
    torch.testing.assert_close(head(features).log_prob(x), expected, atol=1e-4, rtol=1e-5)


def _tiny_vae(dim=12, latent=3):
    torch.manual_seed(1)
    encoder, decoder = GatedMLP(dim, 16, 1), GatedMLP(latent, 16, 1)
    family, head = GaussianLatent(16, latent), BernoulliLikelihood(16, dim)
    return encoder, family, decoder, head


def test_importance_sampled_bound_is_above_elbo_and_grows_with_samples():
    encoder, family, decoder, head = _tiny_vae()
    x = torch.bernoulli(torch.full((256, 12), 0.4))
    with torch.no_grad():
        q = family.posterior(encoder(x))
        p = family.prior(None)

        def log_px(z):
            return head(decoder(z)).log_prob(x)

        torch.manual_seed(0)
        z = q.sample((500,))
        elbo = (log_px(z) + p.log_prob(z) - q.log_prob(z)).mean()  # exact-in-expectation ELBO
        bounds = [importance_sampled_log_likelihood(q, p, log_px, s, chunk_size=64).mean() for s in (1, 10, 100, 1000)]
    assert bounds[-1] > elbo + 0.05, (bounds, elbo)
    assert all(b2 >= b1 - 0.02 for b1, b2 in zip(bounds, bounds[1:], strict=False)), bounds
    assert abs(bounds[0] - elbo) < 0.3  # S = 1 is an unbiased ELBO estimate


def test_importance_sampling_is_independent_of_chunk_size():
    encoder, family, decoder, head = _tiny_vae()
    x = torch.bernoulli(torch.full((8, 12), 0.4))
    with torch.no_grad():
        q, p = family.posterior(encoder(x)), family.prior(None)
        results = []
        for chunk in (7, 100):
            torch.manual_seed(3)
            results.append(importance_sampled_log_likelihood(q, p, lambda z: head(decoder(z)).log_prob(x), 100, chunk))
    torch.testing.assert_close(results[0], results[1])


def test_gaussian_samples_in_chunks_are_q_sample_bit_for_bit():
    family = GaussianLatent(in_features=8, latent_dim=5)
    q = family.posterior(torch.randn(7, 8))
    torch.manual_seed(4)
    whole = q.sample((45,))
    torch.manual_seed(4)
    chunks = list(family.sample_in_chunks(q, 45, 16))  # 16 + 16 + 13
    assert [len(c) for c in chunks] == [16, 16, 13]
    assert torch.equal(torch.cat(chunks), whole)


def test_active_units_counts_dimensions_with_variance_above_threshold():
    torch.manual_seed(0)
    means = torch.randn(1000, 4) * torch.tensor([1.0, 0.2, 0.05, 0.0])
    metric = ActiveUnits(latent_dim=4)
    for chunk in means.split(128):
        metric.update(chunk)
    torch.testing.assert_close(metric.variances().float(), means.var(0), atol=1e-5, rtol=1e-4)
    assert metric.compute().item() == 2  # variances 1, 0.04 pass; 0.0025 and 0 do not


@pytest.mark.parametrize("fused", [False, True])  # the CPU default is fused
def test_adam_normgrad_equals_adam_on_normalised_gradients(fused):
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Linear(4, 3))
    b = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Linear(4, 3))
    b.load_state_dict(a.state_dict())

    def groups(model):  # two groups with their own settings, as a user may configure them
        return [{"params": model[0].parameters()}, {"params": model[1].parameters(), "lr": 0.03, "weight_decay": 0.1}]

    opt_a = AdamNormGrad(groups(a), lr=0.1, fused=fused)
    opt_b = torch.optim.Adam(groups(b), lr=0.1)
    x = torch.randn(7, 5)
    for step in range(4):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            (model(x) ** 2).sum().mul(37.0).backward()
        a[0].bias.grad.zero_()  # an all-zero gradient must stay zero, not become NaN
        b[0].bias.grad.zero_()
        for p in b.parameters():
            p.grad /= p.grad.norm() + 1e-12
        opt_a.step()
        opt_b.step()
        if step == 1:  # a learning-rate change between steps (schedulers do this) is honoured
            for opt in (opt_a, opt_b):
                opt.param_groups[0]["lr"] = 0.05
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)
    # Same state layout as torch's Adam, so checkpoints are interchangeable.
    state_a, state_b = opt_a.state_dict()["state"], opt_b.state_dict()["state"]
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert state_a[key].keys() == state_b[key].keys()
        torch.testing.assert_close(state_a[key]["exp_avg_sq"], state_b[key]["exp_avg_sq"])
        assert float(state_a[key]["step"]) == float(state_b[key]["step"]) == 4


def test_adam_normgrad_zero_grad_sets_or_zeroes_every_gradient():
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Linear(4, 3))
    opt = AdamNormGrad([{"params": model[0].parameters()}, {"params": model[1].parameters()}], lr=0.1)
    model(torch.randn(2, 5)).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_normgrad_fused_is_bit_identical_to_dividing_first(amsgrad):
    """The fused path divides inside torch's fused Adam (grad_scale): same bits as a division pass."""
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(50, 40), torch.nn.Linear(40, 3))
    b = torch.nn.Sequential(torch.nn.Linear(50, 40), torch.nn.Linear(40, 3))
    b.load_state_dict(a.state_dict())
    opt_a = AdamNormGrad(a.parameters(), lr=0.01, fused=True, amsgrad=amsgrad, weight_decay=0.01)
    opt_b = torch.optim.Adam(b.parameters(), lr=0.01, fused=True, amsgrad=amsgrad, weight_decay=0.01)
    x = torch.randn(7, 50)
    for _ in range(5):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            (model(x) ** 2).sum().mul(37.0).backward()
        grads = [p.grad for p in b.parameters()]
        norms = torch._foreach_norm(grads)
        torch._foreach_add_(norms, 1e-12)
        torch._foreach_div_(grads, norms)
        opt_a.step()
        opt_b.step()
    assert all(torch.equal(pa, pb) for pa, pb in zip(a.parameters(), b.parameters(), strict=True))


def test_discretized_logistic_likelihood_is_normalised_per_pixel():
    head = DiscretizedLogisticLikelihood(in_features=4, dim=3)
    d = head(torch.randn(2, 4)).base_dist
    bins = ((torch.arange(256) + 0.5) / 256).view(256, 1, 1).expand(256, 2, 3)
    total = torch.logsumexp(d.log_prob(bins), 0).exp()
    torch.testing.assert_close(total, torch.ones(2, 3), atol=1e-4, rtol=0)
    assert math.isfinite(d.log_prob(bins).min().item())


def test_gaussian_prior_is_standard_normal():
    p = GaussianLatent(4, 3).prior(None)
    z = torch.randn(10, 3)
    torch.testing.assert_close(p.log_prob(z), Normal(0.0, 1.0).log_prob(z).sum(-1))


@pytest.mark.parametrize(
    ("n", "shape", "chunk"),
    [
        (5000, (100, 40), 32),  # the test pass: whole blocks per chunk
        (45, (7, 5), 16),
        (17, (1, 5), 1),  # a last draw under one block joins the one before
        (33, (3,), 4),
        (10, (1,), 3),
        (3, (2,), 1),  # under one block in all: one draw
        (40, (13, 3), 7),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normal_in_chunks_draws_what_one_draw_would(n, shape, chunk, dtype):
    torch.manual_seed(5)
    whole = torch.empty((n, *shape), dtype=dtype).normal_()
    after_whole = torch.rand(3)
    torch.manual_seed(5)
    chunks = list(normal_in_chunks(n, shape, chunk, dtype, torch.device("cpu")))
    assert [len(c) for c in chunks] == [len(c) for c in whole.split(chunk)]
    assert torch.equal(torch.cat(chunks), whole)
    assert torch.equal(torch.rand(3), after_whole)  # the stream continues where one draw leaves it
