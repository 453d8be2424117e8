"""von Mises-Fisher and uniform distributions on the sphere: sampling, densities, KL, gradients."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch.autograd import gradcheck
from torch.distributions import kl_divergence

from vae_lab.distributions.bessel import bessel_iv_ratio
from vae_lab.distributions.hyperspherical_uniform import HypersphericalUniform, log_sphere_surface_area
from vae_lab.distributions.spherical import householder_e1_to, rotate_from_e1
from vae_lab.distributions.von_mises_fisher import VonMisesFisher, WoodSampler, wood_b

GRID_DIMS = [2, 3, 11, 51, 129, 1001]
GRID_KAPPAS = [1e-3, 1.0, 10.0, 1e2, 1e3, 1e4, 1e5]


def _direction(dim: int, dtype=torch.float64, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(dim, generator=generator, dtype=dtype)
    return x / x.norm()


def _vmf(dim, kappa, dtype=torch.float64) -> VonMisesFisher:
    return VonMisesFisher(_direction(dim, dtype), torch.tensor(kappa, dtype=dtype))


def _exact_mean_resultant_length(dim: int, kappa: float) -> float:
    import mpmath

    return float(mpmath.besseli(dim / 2, kappa) / mpmath.besseli(dim / 2 - 1, kappa))


# --- sampling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [2, 3, 5, 11, 129])
def test_samples_have_unit_norm_and_shape(dim, dtype):
    torch.manual_seed(0)
    q = VonMisesFisher(_direction(dim, dtype).expand(4, dim), torch.tensor([0.1, 1.0, 50.0, 1e4], dtype=dtype))
    z = q.rsample((250,))
    assert z.shape == (250, 4, dim) and z.dtype == dtype
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    assert (z.norm(dim=-1) - 1).abs().max() < tolerance


@pytest.mark.parametrize(
    "dim, kappa", [(2, 1.0), (3, 0.3), (3, 10.0), (5, 2.0), (11, 10.0), (11, 1e4), (51, 100.0), (129, 5.0)]
)
def test_mean_resultant_length_and_direction(dim, kappa):
    torch.manual_seed(1)
    q = _vmf(dim, kappa)
    z = q.rsample((40000,))
    w = z @ q.loc
    a = _exact_mean_resultant_length(dim, kappa)
    assert abs(q.mean_resultant_length.item() - a) < 1e-12
    # 1 − w is the informative quantity when κ is large: compare it relatively, within 5 s.e.
    one_minus_w = 1 - w
    standard_error = one_minus_w.std() / math.sqrt(len(w))
    assert abs(one_minus_w.mean() - (1 - a)) < 5 * standard_error
    sample_mean = z.mean(0)
    cosine = sample_mean @ q.loc / sample_mean.norm()
    assert cosine > 1 - 5 / (len(w) * max(a, 0.05) ** 2)  # direction error ~ 1/(√n A)
    torch.testing.assert_close(q.mean, a * q.loc, rtol=1e-10, atol=1e-12)


def test_float32_wood_b_is_cancellation_free_at_high_concentration():
    """Public code loses b to rounding in float32 at m = 11, κ = 1e4 and acceptance collapses."""
    torch.manual_seed(2)
    kappa64 = torch.tensor(1e4, dtype=torch.float64)
    b64 = (-2 * kappa64 + torch.sqrt(4 * kappa64**2 + 100)) / 10
    assert abs(wood_b(kappa64.float(), 11).item() / b64.item() - 1) < 1e-6
    q = _vmf(11, 1e4, dtype=torch.float32)
    z = q.rsample((20000,))
    one_minus_w = (1 - z @ q.loc).double()
    exact = 1 - _exact_mean_resultant_length(11, 1e4)
    assert abs(one_minus_w.mean().item() / exact - 1) < 0.02
    assert (z @ q.loc).abs().min() > 0.9  # no never-accepted sample left orthogonal to μ


def _w_cdf(dim: int, kappa: float):
    """CDF of w = μ·z, density ∝ exp(κw)(1 − w²)^((m−3)/2), by quadrature on a fine grid."""
    grid = np.linspace(-1, 1, 200001)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_density = kappa * grid + 0.5 * (dim - 3) * np.log1p(-(grid**2))
    density = np.exp(log_density - log_density[np.isfinite(log_density)].max())
    density[~np.isfinite(density)] = 0.0
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2)])
    cdf /= cdf[-1]
    return lambda x: np.interp(x, grid, cdf)


@pytest.mark.parametrize("dim, kappa", [(2, 1.0), (3, 4.0), (4, 0.5), (11, 10.0), (51, 100.0)])
def test_distribution_of_w_by_kolmogorov_smirnov(dim, kappa):
    torch.manual_seed(3)
    q = _vmf(dim, kappa)
    w = (q.sample((20000,)) @ q.loc).numpy()
    assert stats.kstest(w, _w_cdf(dim, kappa)).pvalue > 1e-3


@pytest.mark.parametrize("dim, kappa", [(3, 2.0), (5, 7.0)])
def test_second_moment_matches_theory(dim, kappa):
    """E[zzᵀ] = (A/κ)(I − μμᵀ) + (1 − (m−1)A/κ) μμᵀ: checks the tangential part and the reflection."""
    torch.manual_seed(4)
    q = _vmf(dim, kappa)
    z = q.sample((100000,))
    a = _exact_mean_resultant_length(dim, kappa)
    mu_mu = torch.outer(q.loc, q.loc)
    tangential = (a / kappa) * (torch.eye(dim, dtype=torch.float64) - mu_mu)
    radial = (1 - (dim - 1) * a / kappa) * mu_mu
    torch.testing.assert_close(z.T @ z / len(z), tangential + radial, atol=6e-3, rtol=0)


def test_householder_maps_e1_to_loc_and_is_orthogonal():
    torch.manual_seed(5)
    loc = torch.nn.functional.normalize(torch.randn(64, 7, dtype=torch.float64), dim=-1)
    loc[0] = torch.eye(7, dtype=torch.float64)[0]  # the degenerate case of the textbook reflection
    loc[1] = -torch.eye(7, dtype=torch.float64)[0]
    e1 = torch.eye(7, dtype=torch.float64)[0].expand(64, 7)
    torch.testing.assert_close(householder_e1_to(loc, e1), loc)
    x = torch.randn(64, 7, dtype=torch.float64)
    torch.testing.assert_close(householder_e1_to(loc, x).norm(dim=-1), x.norm(dim=-1))


@pytest.mark.parametrize("dim", [2, 3, 9])
def test_fused_rotation_equals_the_householder_map(dim):
    torch.manual_seed(13)
    loc = torch.nn.functional.normalize(torch.randn(32, dim, dtype=torch.float64), dim=-1)
    w = torch.rand(32, dtype=torch.float64) * 2 - 1
    radius = torch.sqrt(1 - w**2)
    noise = torch.randn(32, dim - 1, dtype=torch.float64)
    at_e1 = torch.cat([w[:, None], radius[:, None] * noise / noise.norm(dim=-1, keepdim=True)], dim=-1)
    torch.testing.assert_close(rotate_from_e1(loc, w, radius, noise), householder_e1_to(loc, at_e1))


def test_rejection_fallback_is_exact_and_never_returns_unaccepted_rows(monkeypatch):
    """Force most rows into the fallback rounds: the distribution must not change."""
    torch.manual_seed(6)
    one_proposal_per_round = WoodSampler(first_block=1, growth=1, max_block=1, max_rounds=60)
    monkeypatch.setattr(VonMisesFisher, "sampler", one_proposal_per_round)
    q = _vmf(11, 30.0)
    w = q.rsample((20000,)) @ q.loc
    assert stats.kstest(w.numpy(), _w_cdf(11, 30.0)).pvalue > 1e-3
    assert w.min() > 0  # a placeholder w = 0 would show up here; P(w < 0) is astronomically small


def test_rejection_sampler_raises_instead_of_returning_garbage():
    sampler = WoodSampler(max_rounds=3)
    kappa = torch.tensor([1.0, float("nan")], dtype=torch.float64)
    with pytest.raises(RuntimeError, match="never accepted"):
        sampler.sample_eps(kappa, wood_b(kappa, 11), 11)


# --- densities, entropy, KL -------------------------------------------------------------------


@pytest.mark.parametrize("kappa", [1e-3, 1.0, 10.0, 60.0])
def test_log_prob_integrates_to_one_on_s2(sphere_quadrature, kappa):
    """μ is a generic direction, not the pole of the quadrature grid."""
    points, weights = sphere_quadrature
    integral = (_vmf(3, kappa).log_prob(points).exp() * weights).sum()
    assert abs(integral.item() - 1) < 1e-8


@pytest.mark.parametrize("kappa", [0.5, 30.0])
def test_log_prob_integrates_to_one_on_s1(kappa):
    angle = torch.linspace(0, 2 * math.pi, 20001, dtype=torch.float64)[:-1]
    points = torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1)
    integral = _vmf(2, kappa).log_prob(points).exp().mean() * 2 * math.pi
    assert abs(integral.item() - 1) < 1e-10


@pytest.mark.parametrize("dim, kappa", [(2, 3.0), (3, 1.0), (11, 10.0), (51, 1e3), (129, 0.5)])
def test_kl_and_entropy_against_monte_carlo(dim, kappa):
    torch.manual_seed(7)
    q = _vmf(dim, kappa)
    z = q.sample((40000,))
    log_q = q.log_prob(z)
    log_ratio = log_q + log_sphere_surface_area(dim)  # log q − log uniform
    kl = kl_divergence(q, HypersphericalUniform(dim, dtype=torch.float64))
    standard_error = log_ratio.std() / math.sqrt(len(z))
    assert abs(kl - log_ratio.mean()) < 5 * standard_error + 1e-12
    assert abs(q.entropy() - (-log_q.mean())) < 5 * standard_error + 1e-12
    assert kl >= 0


def test_kl_at_tiny_concentration_is_small_and_positive():
    """KL ≈ κ²/(2m) as κ → 0; the normalized Bessel form keeps it from cancelling to garbage."""
    for dim in [3, 11, 1001]:
        kl = _vmf(dim, 1e-2).kl_to_uniform().item()
        assert abs(kl / (1e-4 / (2 * dim)) - 1) < 1e-3


def test_kl_has_batch_shape_and_checks_dimension():
    q = VonMisesFisher(_direction(5).expand(2, 3, 5), torch.rand(2, 3, 1, dtype=torch.float64) + 0.5)
    assert q.batch_shape == (2, 3) and q.event_shape == (5,)
    assert kl_divergence(q, HypersphericalUniform(5, dtype=torch.float64)).shape == (2, 3)
    with pytest.raises(ValueError):
        kl_divergence(q, HypersphericalUniform(4, dtype=torch.float64))


def test_scale_of_shape_batch_or_batch_by_one_is_the_same():
    loc = torch.nn.functional.normalize(torch.randn(4, 6, dtype=torch.float64), dim=-1)
    kappa = torch.rand(4, dtype=torch.float64) * 10
    z = torch.nn.functional.normalize(torch.randn(4, 6, dtype=torch.float64), dim=-1)
    a, b = VonMisesFisher(loc, kappa), VonMisesFisher(loc, kappa[:, None])
    torch.testing.assert_close(a.log_prob(z), b.log_prob(z))
    assert b.scale.shape == (4,)


def test_validation_rejects_bad_parameters_and_values():
    with pytest.raises(ValueError):
        VonMisesFisher(torch.tensor([1.0, 1.0]), torch.tensor(1.0), validate_args=True)
    with pytest.raises(ValueError):
        VonMisesFisher(torch.tensor([1.0, 0.0]), torch.tensor(-1.0), validate_args=True)
    with pytest.raises(ValueError):
        VonMisesFisher(torch.tensor([1.0]), torch.tensor(1.0))
    q = VonMisesFisher(torch.tensor([1.0, 0.0]), torch.tensor(1.0), validate_args=True)
    with pytest.raises(ValueError):
        q.log_prob(torch.tensor([2.0, 0.0]))


def test_expand():
    q = _vmf(4, 3.0).expand((5,))
    assert q.batch_shape == (5,) and q.rsample().shape == (5, 4)


# --- gradients ----------------------------------------------------------------------------------


def test_gradcheck_log_prob_kl_entropy():
    loc = torch.nn.functional.normalize(torch.randn(3, 5, dtype=torch.float64), dim=-1).requires_grad_(True)
    kappa = torch.tensor([1e-2, 2.0, 300.0], dtype=torch.float64, requires_grad=True)
    z = torch.nn.functional.normalize(torch.randn(3, 5, dtype=torch.float64), dim=-1)

    def quantities(loc, kappa):
        q = VonMisesFisher(loc, kappa, validate_args=False)
        return q.log_prob(z), q.kl_to_uniform(), q.entropy(), q.mean

    assert gradcheck(quantities, (loc, kappa))


@pytest.mark.parametrize("dim", [3, 6])
def test_gradcheck_rsample_with_common_random_numbers(dim):
    """The pathwise derivative of z(μ, κ) for fixed randomness (re-seeded on every call)."""
    loc = torch.nn.functional.normalize(torch.randn(4, dim, dtype=torch.float64), dim=-1)
    loc[:, 0] = loc[:, 0].abs() + 0.1  # keep away from the reflection's sign switch at μ₁ = 0
    loc = torch.nn.functional.normalize(loc, dim=-1).requires_grad_(True)
    kappa = torch.tensor([0.5, 3.0, 20.0, 400.0], dtype=torch.float64, requires_grad=True)

    def sample(loc, kappa):
        torch.manual_seed(8)
        return VonMisesFisher(loc, kappa, validate_args=False).rsample((3,))

    assert gradcheck(sample, (loc, kappa))


def _gradient_of_mean_cosine(dim, kappa, grad_correction, n=30000):
    """Per-sample estimates of d/dκ E[μ·z]: mean and standard error."""
    loc = _direction(dim).expand(n, dim)
    kappa_t = torch.full((n,), kappa, dtype=torch.float64, requires_grad=True)
    q = VonMisesFisher(loc, kappa_t)
    if grad_correction:
        z, log_weight = q.rsample_with_log_weight()
        f = (z * loc).sum(-1)
        f = f + q.grad_correction_surrogate(f, log_weight)
    else:
        f = (q.rsample() * loc).sum(-1)
    (grad,) = torch.autograd.grad(f.sum(), kappa_t)
    return grad.mean().item(), grad.std().item() / math.sqrt(n)


@pytest.mark.parametrize("dim, kappa", [(2, 2.0), (5, 5.0), (11, 5.0)])
def test_grad_correction_is_unbiased_and_plain_gradient_is_biased(dim, kappa):
    """E[μ·z] = A_m(κ), so the exact gradient is A_m'(κ) (central difference of the ratio)."""
    torch.manual_seed(9)
    step = 1e-5
    exact = (
        bessel_iv_ratio(dim / 2 - 1, torch.tensor(kappa + step, dtype=torch.float64))
        - bessel_iv_ratio(dim / 2 - 1, torch.tensor(kappa - step, dtype=torch.float64))
    ).item() / (2 * step)
    corrected, corrected_se = _gradient_of_mean_cosine(dim, kappa, grad_correction=True)
    plain, plain_se = _gradient_of_mean_cosine(dim, kappa, grad_correction=False)
    assert abs(corrected - exact) < 4 * corrected_se
    assert exact - plain > 20 * plain_se  # the dropped term is large here, and of one sign
    assert abs(plain / exact - 1) > 0.05


def test_inverse_cdf_gradient_needs_no_correction_for_m3():
    torch.manual_seed(10)
    exact = (
        bessel_iv_ratio(0.5, torch.tensor(2.0 + 1e-5, dtype=torch.float64))
        - bessel_iv_ratio(0.5, torch.tensor(2.0 - 1e-5, dtype=torch.float64))
    ).item() / 2e-5
    plain, plain_se = _gradient_of_mean_cosine(3, 2.0, grad_correction=False)
    assert abs(plain - exact) < 4 * plain_se


def test_grad_correction_surrogate_is_zero_in_value():
    q = _vmf(7, 3.0)
    z, log_weight = q.rsample_with_log_weight((10,))
    assert log_weight.shape == (10,)
    f = z[..., 0] ** 2
    assert torch.equal(q.grad_correction_surrogate(f, log_weight), torch.zeros_like(f))
    # m = 3 samples exactly: the log weight is zero, and so is the correction (value and gradient).
    kappa = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    z3, log_weight3 = VonMisesFisher(_direction(3), kappa).rsample_with_log_weight((10,))
    assert torch.equal(log_weight3, torch.zeros(10, dtype=torch.float64))
    f3 = z3[..., 0] ** 2
    assert torch.equal(VonMisesFisher.grad_correction_surrogate(f3, log_weight3), torch.zeros_like(f3))


def test_the_distribution_keeps_no_per_sample_state():
    """Sampling leaves the instance as it was (bar the lazy caches of κ); the correction uses the
    log weight it is given, never one remembered from an earlier draw."""
    kappa = torch.tensor([2.0, 30.0], dtype=torch.float64, requires_grad=True)
    q = VonMisesFisher(_direction(9).expand(2, 9), kappa)
    q.log_prob(q.loc), q.entropy(), q.mean  # fill the caches, so that only sampling could add state
    state = dict(vars(q))
    torch.manual_seed(14)
    z_a, log_weight_a = q.rsample_with_log_weight((6,))
    z_b, log_weight_b = q.rsample_with_log_weight((6,))
    q.rsample((3,))
    assert vars(q).keys() == state.keys() and all(vars(q)[k] is v for k, v in state.items())
    assert not torch.equal(z_a, z_b) and not torch.allclose(log_weight_a, log_weight_b)  # independent draws

    f_a = (z_a * q.loc).sum(-1)
    (grad_a,) = torch.autograd.grad(q.grad_correction_surrogate(f_a, log_weight_a).sum(), kappa, retain_graph=True)
    (grad_a_again,) = torch.autograd.grad(
        q.grad_correction_surrogate(f_a, log_weight_a).sum(), kappa, retain_graph=True
    )
    (grad_b,) = torch.autograd.grad(q.grad_correction_surrogate(f_a, log_weight_b).sum(), kappa, retain_graph=True)
    assert torch.equal(grad_a, grad_a_again)  # the later draw changed nothing
    assert not torch.allclose(grad_a, grad_b)
    # ∇κ of the surrogate is f · ∇κ log_weight, from exactly the log weight passed in.
    (expected,) = torch.autograd.grad((f_a.detach() * log_weight_a).sum(), kappa)
    torch.testing.assert_close(grad_a, expected, rtol=1e-14, atol=0)


@pytest.mark.parametrize("sample_shape", [(), (4,)])
def test_rsample_and_rsample_with_log_weight_draw_the_same_sample(sample_shape):
    kappa = torch.tensor([0.5, 5.0, 1e3], dtype=torch.float64)
    for dim in (3, 11):
        q = VonMisesFisher(_direction(dim).expand(3, dim), kappa)
        torch.manual_seed(15)
        z = q.rsample(sample_shape)
        after_plain = torch.rand(())
        torch.manual_seed(15)
        z_weighted, log_weight = q.rsample_with_log_weight(sample_shape)
        assert torch.equal(z, z_weighted) and torch.equal(torch.rand(()), after_plain)
        assert log_weight.shape == (*sample_shape, 3)


# --- the robustness grid ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", GRID_DIMS)
def test_everything_finite_on_the_grid(dim, dtype):
    torch.manual_seed(11)
    loc = _direction(dim, dtype).expand(len(GRID_KAPPAS), dim).clone().requires_grad_(True)
    kappa = torch.tensor(GRID_KAPPAS, dtype=dtype, requires_grad=True)
    q = VonMisesFisher(loc, kappa)
    z, log_weight = q.rsample_with_log_weight((200,))
    log_prob = q.log_prob(z)
    kl = kl_divergence(q, HypersphericalUniform(dim, dtype=dtype))
    entropy = q.entropy()
    f = (z * torch.linspace(-1, 1, dim, dtype=dtype)).sum(-1)
    objective = (f + q.grad_correction_surrogate(f, log_weight)).sum() + log_prob.sum() + kl.sum() + entropy.sum()
    loc_grad, kappa_grad = torch.autograd.grad(objective, (loc, kappa))
    for name, tensor in [("z", z), ("log_prob", log_prob), ("kl", kl), ("entropy", entropy)]:
        assert torch.isfinite(tensor).all(), name
    assert torch.isfinite(loc_grad).all() and torch.isfinite(kappa_grad).all()
    assert ((z.norm(dim=-1) - 1).abs() < 1e-4).all()
    assert (kl > -1e-3).all()
    # The samples concentrate as they should at large κ, where 1 − μ·z ≈ Gamma((m−1)/2, κ): its
    # sample mean is within 5 relative standard errors √(2/((m−1)n)) of 1 − A_m(κ).
    one_minus_w = (1 - (z.detach() * loc.detach()).sum(-1)).double().mean(0)
    expected = 1 - bessel_iv_ratio(dim / 2 - 1, kappa.detach().double())
    large = kappa.detach() >= 1e3
    tolerance = 5 * math.sqrt(2 / ((dim - 1) * len(z)))
    assert (abs(one_minus_w[large] / expected[large] - 1) < tolerance).all()


# --- the uniform distribution -------------------------------------------------------------------


def test_hyperspherical_uniform():
    torch.manual_seed(12)
    u = HypersphericalUniform(4, dtype=torch.float64)
    z = u.rsample((50000,))
    assert z.shape == (50000, 4)
    assert (z.norm(dim=-1) - 1).abs().max() < 1e-12
    torch.testing.assert_close(z.T @ z / len(z), torch.eye(4, dtype=torch.float64) / 4, atol=6e-3, rtol=0)
    assert z.mean(0).abs().max() < 0.01
    assert abs(HypersphericalUniform(3).entropy().item() - math.log(4 * math.pi)) < 1e-6
    assert torch.allclose(u.log_prob(z[:3]), torch.full((3,), -math.log(2 * math.pi**2), dtype=torch.float64))
    assert abs(log_sphere_surface_area(2) - math.log(2 * math.pi)) < 1e-12
    with pytest.raises(ValueError):
        HypersphericalUniform(0)
