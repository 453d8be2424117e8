"""Hole metrics of the aggregate posterior and I(x; z) on constructed posteriors with known answers."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Independent, Normal

from vae_lab.distributions.von_mises_fisher import VonMisesFisher
from vae_lab.latents.gaussian import GaussianLatent
from vae_lab.latents.vmf import VonMisesFisherLatent
from vae_lab.metrics.holes import LatentHoles
from vae_lab.metrics.latent import MutualInformation
from vae_lab.rng import seeded_stream


def gaussian_model(latent_dim: int):
    """Encoder features are [μ, log σ]: the posteriors are exactly what a test builds."""
    latent = GaussianLatent(in_features=2 * latent_dim, latent_dim=latent_dim)
    latent.posterior = lambda h: Independent(Normal(h[:, :latent_dim], h[:, latent_dim:].exp()), 1)
    return SimpleNamespace(latent=latent, prior=latent.prior, encoder=torch.nn.Identity())


def holes(model, features: torch.Tensor, batches: int = 2, **kwargs) -> dict:
    metric = LatentHoles(compile=False, **kwargs)
    for chunk in features.chunk(batches):  # several evaluation batches, gathered as one set
        metric.update(model=model, x=chunk)
    return {k: v.tolist() if v.numel() > 1 else float(v) for k, v in metric.compute().items()}


def test_an_aggregate_equal_to_the_prior_has_no_holes():
    torch.manual_seed(0)
    s = 0.8  # μ ~ N(0, 1 − s²), σ = s: q_agg = N(0, I)
    mean = torch.randn(3000, 3) * math.sqrt(1 - s * s)
    out = holes(gaussian_model(3), torch.cat([mean, torch.full_like(mean, math.log(s))], 1), prior_samples=20_000)
    assert abs(out["kl_prior_to_aggregate"]) < 0.01 and abs(out["kl_aggregate_to_prior"]) < 0.01
    assert out["cu_0.01"] == 3 and max(map(abs, out["kl_prior_to_aggregate_per_dim"])) < 0.005


def test_shifted_dimensions_give_their_closed_form_kls_and_cu_counts():
    torch.manual_seed(1)
    m = torch.tensor([0.0, 0.1, 0.3, 1.0])  # every posterior N(m, I): KL(p_d ‖ q_agg,d) = m_d² / 2
    features = torch.cat([m.expand(500, 4), torch.zeros(500, 4)], 1)
    out = holes(gaussian_model(4), features, prior_samples=50_000)
    expected = (m**2 / 2).tolist()  # 0, 0.005, 0.045, 0.5
    # Monte-Carlo standard error of the m_d = 1 term: 1/√S = 0.0045 (q_agg direction: 12 800 samples).
    assert out["kl_prior_to_aggregate_per_dim"] == pytest.approx(expected, abs=0.02)
    assert out["kl_aggregate_to_prior_per_dim"] == pytest.approx(expected, abs=0.025)
    assert out["kl_prior_to_aggregate"] == pytest.approx(sum(expected), abs=0.03)
    assert out["kl_aggregate_to_prior"] == pytest.approx(sum(expected), abs=0.03)
    assert [out[f"cu_{t}"] for t in ("0.01", "0.03", "0.05", "0.1")] == [2, 2, 3, 3]


def test_prior_samples_come_from_a_seeded_stream_and_leave_the_callers_alone():
    features = torch.cat([torch.randn(200, 2), torch.zeros(200, 2)], 1)
    torch.manual_seed(5)
    first = holes(gaussian_model(2), features, prior_samples=1000)
    after = torch.rand(1)
    torch.manual_seed(5)
    assert holes(gaussian_model(2), features, batches=4, prior_samples=1000) == first  # and any batching
    assert torch.equal(torch.rand(1), after)


def test_the_compiled_kernel_gives_the_eager_values():
    torch.manual_seed(2)
    features = torch.cat([torch.randn(300, 3), torch.rand(300, 3) - 1.5], 1)
    eager = holes(gaussian_model(3), features, prior_samples=64 * 50, chunk_size=64)
    compiled_metric = LatentHoles(prior_samples=64 * 50, chunk_size=64, compile=True)
    compiled_metric.update(model=gaussian_model(3), x=features)
    compiled = {k: v.tolist() if v.numel() > 1 else float(v) for k, v in compiled_metric.compute().items()}
    for key in ("kl_prior_to_aggregate", "kl_aggregate_to_prior", "cu_0.03"):
        assert compiled[key] == pytest.approx(eager[key], rel=1e-5, abs=1e-6)
    assert compiled["kl_prior_to_aggregate_per_dim"] == pytest.approx(eager["kl_prior_to_aggregate_per_dim"], rel=1e-4)


def test_nearly_collapsed_dimensions_keep_their_small_kls_to_float64_accuracy():
    """A dimension with KL(p_d ‖ q_agg,d) ~ 1e-5 nats: float32 rounding of the ~9-nat constants
    (log N, log 2π) or of a long float32 sum would shift it by ~1e-7, a percent of its value."""
    torch.manual_seed(3)
    n, spread = 2000, torch.tensor([0.003, 0.03, 0.8])
    mean = torch.randn(n, 3) * spread
    log_scale = 0.5 * torch.log1p(-(spread**2)) + 0.01 * torch.randn(n, 3)
    features = torch.cat([mean, log_scale], 1)
    model = gaussian_model(3)
    metric = LatentHoles(prior_samples=64 * 50, chunk_size=64, compile=True)
    metric.update(model=model, x=features)
    kl_dims = metric.compute()["kl_prior_to_aggregate_per_dim"].double()
    with seeded_stream(0, features.device):  # the prior samples the metric drew
        z = model.prior().sample((64 * 50,)).double()
    components = Normal(mean.double(), log_scale.double().exp())
    log_q = torch.logsumexp(components.log_prob(z.unsqueeze(1)), 1) - math.log(n)
    reference = (Normal(0.0, 1.0).log_prob(z) - log_q).mean(0)
    assert (kl_dims - reference).abs().max() < 4e-8  # the float32 constants gave 1.5e-7


def vmf_model(latent_dim: int, kappa: float):
    latent = VonMisesFisherLatent(in_features=latent_dim, latent_dim=latent_dim, kappa=kappa)
    latent.posterior = lambda h: VonMisesFisher(F.normalize(h, dim=-1), torch.full(h.shape[:1], kappa))
    return SimpleNamespace(latent=latent, prior=latent.prior, encoder=torch.nn.Identity())


def test_vmf_holes_are_joint_with_closed_forms_and_cu_is_not_applicable():
    torch.manual_seed(3)
    directions = torch.randn(400, 5)
    flat = holes(vmf_model(5, 1e-4), directions, prior_samples=5000)  # κ → 0: q_agg = uniform
    assert abs(flat["kl_prior_to_aggregate"]) < 1e-3 and abs(flat["kl_aggregate_to_prior"]) < 1e-3
    assert "cu_0.03" not in flat and "kl_prior_to_aggregate_per_dim" not in flat
    # All posteriors vMF(μ, κ): KL(uniform ‖ vMF) = log ρ(κ) (E_uniform[μ·z] = 0), and
    # KL(vMF ‖ uniform) has its closed form too.
    same = holes(vmf_model(5, 20.0), torch.tensor([[1.0, 0, 0, 0, 0]]).expand(400, 5), prior_samples=200_000)
    q = VonMisesFisher(torch.tensor([[1.0, 0, 0, 0, 0]]), torch.tensor([20.0]))
    assert same["kl_prior_to_aggregate"] == pytest.approx(float(q._log_rho[0]), rel=0.02)
    assert same["kl_aggregate_to_prior"] == pytest.approx(float(q.kl_to_uniform()[0]), rel=0.01)
    metric = LatentHoles(prior_samples=10)
    metric.update(model=vmf_model(5, 20.0), x=directions)
    assert "per-dimension marginals" in metric.not_applicable


def test_expected_kl_splits_into_mutual_information_and_the_aggregate_kl():
    # E_x KL(q(z|x) ‖ p) = I(x; z) + KL(q_agg ‖ p): three estimators that must agree.
    torch.manual_seed(4)
    features = torch.cat([torch.randn(800, 3) * 1.5, torch.rand(800, 3) * 1.5 - 2], 1)
    model = gaussian_model(3)
    q = model.latent.posterior(features)
    expected_kl = float(torch.distributions.kl_divergence(q, model.prior()).mean())
    mi = MutualInformation()
    for chunk in features.chunk(4):
        mi.update(model=model, x=chunk)
    out = holes(model, features, prior_samples=80_000)
    assert float(mi.compute()) + out["kl_aggregate_to_prior"] == pytest.approx(expected_kl, abs=0.1)
    assert 1.0 < float(mi.compute()) < math.log(800)  # informative posteriors, below the log N cap


def test_holes_stay_finite_and_exact_where_the_aggregate_has_almost_no_mass():
    # Every posterior N(0, e^-6): prior samples beyond ~0.7 lie > 13σ from all of them, where the
    # one-pass sum underflows and the exact fallback takes over.
    # KL(N(0, 1) ‖ N(0, s²)) = log s + 1 / (2 s²) − ½ with s = e^-3.
    s = math.exp(-3.0)
    features = torch.cat([torch.zeros(300, 1), torch.full((300, 1), math.log(s))], 1)
    out = holes(gaussian_model(1), features, prior_samples=20_000)
    expected = math.log(s) + 1 / (2 * s * s) - 0.5
    assert out["kl_prior_to_aggregate"] == pytest.approx(expected, rel=0.03)
    assert out["kl_prior_to_aggregate_per_dim"] == pytest.approx(out["kl_prior_to_aggregate"], rel=1e-5)
    assert out["cu_0.1"] == 0


@pytest.mark.parametrize("family", ["vamp", "power_spherical"])
def test_every_family_with_a_density_gets_the_joint_holes_and_a_reason_for_no_cu(family):
    from vae_lab.latents.vamp import VampPriorLatent
    from vae_lab.latents.vmf import PowerSphericalLatent

    torch.manual_seed(6)
    encoder = torch.nn.Linear(12, 8)
    if family == "vamp":
        latent = VampPriorLatent(in_features=8, latent_dim=3, data_dim=12, components=20)
    else:
        latent = PowerSphericalLatent(in_features=8, latent_dim=3)
    model = SimpleNamespace(latent=latent, encoder=encoder)
    model.prior = lambda: latent.prior(lambda x: latent.posterior(encoder(x)))
    metric = LatentHoles(prior_samples=4000, compile=False)
    with torch.no_grad():
        metric.update(model=model, x=torch.rand(200, 12))
        out = metric.compute()
    assert torch.isfinite(out["kl_prior_to_aggregate"]) and out["kl_prior_to_aggregate"] > -0.05
    assert torch.isfinite(out["kl_aggregate_to_prior"]) and out["kl_aggregate_to_prior"] > -0.05
    assert "cu_0.03" not in out and "per-dimension marginals" in metric.not_applicable
