"""The density-gap objective and the BN-VAE / δ-VAE latent families against closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, Normal

from vae_lab.distributions.von_mises_fisher import VonMisesFisher
from vae_lab.latents.batchnorm_gaussian import BatchNormGaussianLatent
from vae_lab.latents.delta_gaussian import DeltaGaussianLatent, variance_bounds
from vae_lab.latents.gaussian import GaussianLatent
from vae_lab.latents.vmf import VonMisesFisherLatent
from vae_lab.objectives import DensityGapELBO, Terms


def _terms(latent, q) -> Terms:
    p = latent.prior()
    z = q.rsample()
    b = z.shape[0]
    return Terms(q=q, p=p, z=z, log_px=torch.zeros(b), kl=latent.kl(q, p, z), latent=latent)


def _gaussian(mean, std) -> tuple[GaussianLatent, Independent]:
    latent = GaussianLatent(in_features=1, latent_dim=mean.shape[-1])
    return latent, Independent(Normal(mean, std), 1)


def test_gap_vanishes_when_the_posteriors_tile_the_prior():
    torch.manual_seed(0)
    s = 0.9  # μ_i ~ N(0, 1 − s²) and σ = s: the aggregate is N(0, 1)
    mean = torch.randn(1000, 3) * math.sqrt(1 - s * s)
    latent, q = _gaussian(mean, torch.full_like(mean, s))
    gap = DensityGapELBO(aggregate=1000, samples=8).regulariser(_terms(latent, q))
    assert abs(gap.mean().item()) < 0.03  # 3 dimensions, Monte-Carlo error ~0.01
    shifted = DensityGapELBO(aggregate=1000, samples=8).regulariser(_terms(*_gaussian(mean + 1, q.base_dist.scale)))
    assert shifted.mean().item() > 1.0  # the same test fails where the aggregate is off the prior


def test_gap_of_a_shifted_aggregate_is_the_closed_form():
    torch.manual_seed(1)
    m = torch.tensor([0.5, -1.0, 2.0])  # all posteriors N(m, 1): Σ_d KL(N(m_d, 1) ‖ N(0, 1)) = Σ m_d² / 2
    latent, q = _gaussian(m.expand(64, 3), torch.ones(64, 3))
    gap = DensityGapELBO(aggregate=16, samples=64).regulariser(_terms(latent, q))
    assert gap.shape == (64,)
    assert gap.mean().item() == pytest.approx((m**2).sum().item() / 2, abs=0.1)


def test_aggregate_one_is_the_per_example_monte_carlo_kl():
    torch.manual_seed(2)
    mean, std = torch.randn(5, 4), torch.rand(5, 4) + 0.2
    latent, q = _gaussian(mean, std)
    objective = DensityGapELBO(aggregate=1, samples=4)
    torch.manual_seed(3)
    gap = objective.regulariser(_terms(latent, q))
    torch.manual_seed(3)
    terms = _terms(latent, q)  # the same draws: rsample() first, then the 4 samples
    z = q.rsample((4,))
    expected = (q.log_prob(z) - terms.p.log_prob(z)).mean(0)
    torch.testing.assert_close(gap, expected)


def test_chunks_only_mix_their_own_posteriors():
    torch.manual_seed(4)
    # Two chunks: one far from the prior, one on it; each example carries its own chunk's gap.
    mean = torch.cat([torch.full((4, 2), 3.0), torch.zeros(4, 2)])
    latent, q = _gaussian(mean, torch.ones(8, 2))
    gap = DensityGapELBO(aggregate=4, samples=256).regulariser(_terms(latent, q))
    assert torch.allclose(gap[:4], gap[0]) and torch.allclose(gap[4:], gap[4])
    assert gap[0].item() == pytest.approx(9.0, abs=0.4) and abs(gap[4].item()) < 0.1


def test_gap_and_its_gradient_stay_finite_for_collapsed_posteriors():
    mean = torch.randn(32, 8, requires_grad=True)
    std = torch.full((32, 8), math.exp(-3.0))  # the narrowest posterior the Gaussian family allows
    latent, q = _gaussian(mean, std)
    gap = DensityGapELBO(aggregate=32, samples=32).regulariser(_terms(latent, q))
    gap.mean().backward()
    assert torch.isfinite(gap).all() and torch.isfinite(mean.grad).all()


def test_vmf_gap_is_joint_against_the_uniform_density_and_vanishes_as_kappa_goes_to_zero():
    torch.manual_seed(5)
    latent = VonMisesFisherLatent(in_features=1, latent_dim=5, kappa=1e-4)
    loc = torch.nn.functional.normalize(torch.randn(16, 5), dim=-1)
    q = VonMisesFisher(loc, torch.full((16,), 1e-4))
    gap = DensityGapELBO(aggregate=16, samples=8).regulariser(_terms(latent, q))
    assert abs(gap.mean().item()) < 1e-3  # q ≈ uniform, so q_agg ≈ uniform
    concentrated = VonMisesFisher(loc[:1].expand(16, 5), torch.full((16,), 50.0))
    sharp = DensityGapELBO(aggregate=16, samples=8).regulariser(_terms(latent, concentrated))
    # All posteriors equal: q_agg = q, and the gap is KL(vMF(50) ‖ uniform) up to Monte-Carlo error.
    assert sharp.mean().item() == pytest.approx(concentrated.kl_to_uniform()[0].item(), rel=0.05)


@pytest.mark.parametrize("kwargs", [{"aggregate": 0}, {"samples": 0}, {"aggregate": 2.5}])
def test_bad_density_gap_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match=f"objective.{next(iter(kwargs))}="):
        DensityGapELBO(**kwargs)


def test_batchnorm_latent_keeps_the_expected_kl_above_its_floor():
    torch.manual_seed(6)
    gamma, latent_dim = 0.7, 6
    latent = BatchNormGaussianLatent(in_features=10, latent_dim=latent_dim, gamma=gamma)
    with torch.no_grad():  # any parameters: a collapsing head, and a random one with a shift
        latent.head.weight.mul_(1e-2)
    for _ in range(2):
        q = latent.posterior(torch.randn(256, 10))
        kl = latent.kl(q, latent.prior(), q.rsample()).mean()
        assert kl.item() >= latent_dim * gamma**2 / 2 * (1 - 1e-2)
        with torch.no_grad():
            latent.head.weight.normal_()
            latent.shift.normal_()
    assert latent.shift.requires_grad
    assert all(b.requires_grad is False for b in latent.normalise.buffers())


def test_delta_latent_holds_every_dimensions_kl_at_or_above_delta():
    torch.manual_seed(7)
    delta = 0.15
    low, high = variance_bounds(delta)
    for x in (low, high):
        assert math.log(x) - x + 2 * delta + 1 == pytest.approx(0, abs=1e-12)
    latent = DeltaGaussianLatent(in_features=10, latent_dim=8, delta=delta)
    with torch.no_grad():
        latent.head.weight.mul_(20)  # raw outputs far into both tails
    q = latent.posterior(torch.randn(512, 10))
    kl = latent.kl_per_dimension(q, latent.prior())
    assert kl.min().item() >= delta - 1e-5
    assert kl.min().item() == pytest.approx(delta, abs=1e-3)  # the floor is reached, not just respected
