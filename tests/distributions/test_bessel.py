"""log I_ν(κ), the normalized log ρ_ν(κ) and the ratio I_{ν+1}/I_ν against mpmath (50 digits)."""

import math

import mpmath
import numpy as np
import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from vae_lab.distributions.bessel import bessel_iv_ratio, log_bessel_iv, log_bessel_iv_normalized

mpmath.mp.dps = 50

# Orders around every branch of the implementation: 0, half-integers (vMF with odd m), the
# switch to Debye's expansion at 20, and up to 1000; κ over the whole range 1e-4 … 1e5.
ORDERS = [0.0, 0.5, 1.0, 2.5, 4.5, 10.0, 19.5, 20.0, 24.5, 63.0, 100.0, 499.5, 1000.0]
KAPPAS = np.logspace(-4, 5, 25)
RTOL = {torch.float64: 1e-6, torch.float32: 1e-4}


def _reference(nu: float, kappa: float) -> tuple[float, float, float]:
    """(log I_ν(κ), I_{ν+1}(κ)/I_ν(κ), d/dκ log I_ν(κ)) in high precision."""
    k = mpmath.mpf(kappa)
    i_nu, i_next = mpmath.besseli(nu, k), mpmath.besseli(nu + 1, k)
    ratio = i_next / i_nu
    return float(mpmath.log(i_nu)), float(ratio), float(ratio + nu / k)


@pytest.fixture(scope="module")
def reference() -> dict[float, np.ndarray]:
    return {nu: np.array([_reference(nu, k) for k in KAPPAS]) for nu in ORDERS}


def _log_scale_error(value: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Relative error of I itself where |log I| < 1, relative error of log I elsewhere."""
    return np.abs(value - ref) / np.maximum(1.0, np.abs(ref))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("nu", ORDERS)
def test_log_bessel_iv_matches_mpmath(reference, nu, dtype):
    kappa = torch.tensor(KAPPAS, dtype=dtype)
    value = log_bessel_iv(nu, kappa)
    assert value.dtype == dtype
    error = _log_scale_error(value.double().numpy(), reference[nu][:, 0])
    assert error.max() < RTOL[dtype], f"ν={nu}: worst at κ={KAPPAS[error.argmax()]:.3g}: {error.max():.2e}"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("nu", ORDERS)
def test_ratio_and_derivative_match_mpmath(reference, nu, dtype):
    kappa = torch.tensor(KAPPAS, dtype=dtype, requires_grad=True)
    ratio = bessel_iv_ratio(nu, kappa)
    (derivative,) = torch.autograd.grad(log_bessel_iv(nu, kappa).sum(), kappa)
    ratio_error = np.abs(ratio.detach().double().numpy() / reference[nu][:, 1] - 1)
    derivative_error = np.abs(derivative.double().numpy() / reference[nu][:, 2] - 1)
    assert ratio_error.max() < RTOL[dtype]
    assert derivative_error.max() < RTOL[dtype]


@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-9), (torch.float32, 5e-4)])
def test_ratio_derivative_matches_mpmath(dtype, rtol):
    """R' = 1 − R² − (2ν+1)R/κ ≈ (ν+½)/κ² at large κ: autograd through the approximation would
    cancel two ≈ 1/κ terms there (5 % error in float32 at κ = 1e5); the explicit R' must not."""
    mpmath.mp.dps = 50
    kappas = np.logspace(-4, 5, 10)
    for nu in [0.0, 0.5, 4.5, 24.5, 499.5]:
        kappa = torch.tensor(kappas, dtype=dtype, requires_grad=True)
        (grad,) = torch.autograd.grad(bessel_iv_ratio(nu, kappa).sum(), kappa)
        for value, k in zip(grad.tolist(), kappas, strict=True):
            big_k = mpmath.mpf(k)
            ratio = mpmath.besseli(nu + 1, big_k) / mpmath.besseli(nu, big_k)
            ref = float(1 - ratio**2 - (2 * nu + 1) * ratio / big_k)
            assert abs(value / ref - 1) < rtol, (nu, k, value, ref)


def test_float64_accuracy_is_far_better_than_required(reference):
    """Guards the algorithm, not just the spec: a truncated expansion would show up here."""
    for nu in ORDERS:
        kappa = torch.tensor(KAPPAS, dtype=torch.float64)
        assert _log_scale_error(log_bessel_iv(nu, kappa).numpy(), reference[nu][:, 0]).max() < 1e-11
        assert np.abs(bessel_iv_ratio(nu, kappa).numpy() / reference[nu][:, 1] - 1).max() < 1e-11


@pytest.mark.parametrize("nu, kappa", [(0.0, 1e-4), (4.5, 1e-3), (24.5, 0.01), (499.5, 1.0), (20.0, 0.3)])
def test_normalized_log_is_relatively_accurate_at_small_kappa(nu, kappa):
    """log ρ_ν(κ) → 0 as κ → 0 and must not lose relative accuracy there (it is the vMF KL)."""
    ref = float(mpmath.log(mpmath.hyp0f1(nu + 1, mpmath.mpf(kappa) ** 2 / 4)))
    value = log_bessel_iv_normalized(nu, torch.tensor(kappa, dtype=torch.float64)).item()
    assert abs(value / ref - 1) < 1e-6


def test_float32_finite_and_accurate_over_the_whole_range():
    """Dense grid; the reference is the float64 path, itself checked against mpmath above."""
    nu = torch.linspace(0, 1000, 201)[:, None]
    kappa = torch.logspace(-4, 5, 301)[None, :].expand(201, 301).clone().requires_grad_(True)
    value = log_bessel_iv(nu, kappa)
    ratio = bessel_iv_ratio(nu, kappa)
    (grad,) = torch.autograd.grad(value.sum() + ratio.sum(), kappa)
    assert torch.isfinite(value).all() and torch.isfinite(ratio).all() and torch.isfinite(grad).all()
    assert ((ratio > 0) & (ratio < 1)).all()
    reference = log_bessel_iv(nu.double(), kappa.detach().double())
    error = (value.double() - reference).abs() / reference.abs().clamp_min(1)
    assert error.max() < 1e-4


@pytest.mark.parametrize("nu, kappa", [(793.0, 528.4452514648438), (997.0, 663.7430419921875)])
def test_float32_where_log_iv_crosses_zero_at_high_order(nu, kappa):
    """ν log(κ/2) and log Γ(ν+1) (~5000 each) nearly cancel here; summed in float32 they lost 1e-3."""
    value = log_bessel_iv(nu, torch.tensor([kappa], dtype=torch.float32)).item()
    ref = _reference(nu, kappa)[0]
    assert abs(value - ref) / max(1.0, abs(ref)) < 1e-4


def test_public_code_failure_case_is_finite_and_right():
    """scipy.special.ive(63, 1.7) underflows to 0 in float32; the reference S-VAE KL becomes NaN."""
    value = log_bessel_iv(63.0, torch.tensor([1.7], dtype=torch.float32)).item()
    ref = _reference(63.0, 1.7)[0]
    assert math.isfinite(value) and abs(value / ref - 1) < 1e-5


def test_tensor_order_matches_scalar_order():
    kappa = torch.logspace(-4, 5, 50, dtype=torch.float64)
    nus = torch.tensor([0.0, 3.5, 19.5, 20.0, 37.25, 700.0], dtype=torch.float64)[:, None]
    batched = log_bessel_iv(nus, kappa)
    for row, nu in enumerate(nus[:, 0].tolist()):
        torch.testing.assert_close(batched[row], log_bessel_iv(nu, kappa), rtol=1e-14, atol=1e-14)


def test_rejects_negative_order():
    with pytest.raises(ValueError):
        log_bessel_iv(-0.5, torch.tensor([1.0]))


@pytest.mark.parametrize("nu", [0.0, 1.5, 4.5, 25.0, 300.0])
def test_gradcheck(nu):
    kappa = torch.tensor([1e-3, 0.5, 3.0, 40.0, 900.0, 2e4], dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda k: log_bessel_iv(nu, k), (kappa,))
    assert gradcheck(lambda k: log_bessel_iv_normalized(nu, k), (kappa,))
    assert gradcheck(lambda k: bessel_iv_ratio(nu, k), (kappa,))
    assert gradgradcheck(lambda k: log_bessel_iv(nu, k), (kappa,))
