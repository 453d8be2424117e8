"""The shared base of the distributions on the sphere: caches, expand, KL registration, and the
reference draws that pin sampling to the implementation before the base existed."""

import math

import pytest
import torch
from torch.distributions import kl_divergence
from torch.distributions.utils import lazy_property

from vae_lab.distributions.hyperspherical_uniform import HypersphericalUniform
from vae_lab.distributions.power_spherical import PowerSpherical
from vae_lab.distributions.spherical import SphericalDistribution
from vae_lab.distributions.von_mises_fisher import VonMisesFisher

FAMILIES = [VonMisesFisher, PowerSpherical]

# Checkpoints of draws made, before the stateless rewrite, by the stateful VonMisesFisher (and the
# Power Spherical of then) with torch.manual_seed(1234), in float64: sums of the samples (plain and
# weighted by position, which catches a reordering), the next random number drawn after sampling
# (which catches a change in the number of draws), the κ gradient of samples + KL (+ the gradient
# correction) and the log weights. Case: (dim, κ per batch element, corrected, sample shape).
REFERENCE_CASES = {
    "vmf_m3": (3, [0.5, 5.0, 50.0], False, (7,)),
    "vmf_m11_plain": (11, [0.5, 5.0, 50.0, 1e4], False, (7,)),
    "vmf_m11_corrected": (11, [0.5, 5.0, 50.0, 1e4], True, (7,)),
    "vmf_m11_corrected_one_sample": (11, [0.5, 5.0, 50.0, 1e4], True, ()),
    "vmf_m51": (51, [1.0, 100.0, 1e4], False, (7,)),
    "ps_m5": (5, [0.5, 5.0, 50.0], None, (7,)),
}
REFERENCE_VALUES = {
    "vmf_m3": {
        "z_sum": -8.018424939570172,
        "z_ramp": -4.238490272148505,
        "next_draw": 0.7142075016662212,
        "kappa_grad": 1.4768820439360515,
    },
    "vmf_m11_plain": {
        "z_sum": -16.460228517038182,
        "z_ramp": -5.846304441136017,
        "next_draw": 0.8235721291768052,
        "kappa_grad": 0.32288227127968894,
    },
    "vmf_m11_corrected": {
        "z_sum": -16.460228517038182,
        "z_ramp": -5.846304441136017,
        "next_draw": 0.8235721291768052,
        "kappa_grad": 0.31838537857220206,
        "log_weight": 31.855179925299147,
    },
    "vmf_m11_corrected_one_sample": {
        "z_sum": -3.035082221572509,
        "z_ramp": -0.4778030261511718,
        "next_draw": 0.5265470824527558,
        "kappa_grad": 0.8504652361662952,
        "log_weight": 1.4447859665649574,
    },
    "vmf_m51": {
        "z_sum": 15.513042604765833,
        "z_ramp": 8.311973818025324,
        "next_draw": 0.9232846548551561,
        "kappa_grad": 0.46779599884423045,
    },
    "ps_m5": {
        "z_sum": -2.101568055936124,
        "z_ramp": -1.731808239989238,
        "next_draw": 0.12558551999566003,
        "kappa_grad": -0.10154812787682022,
    },
}


def _reference_checkpoints(dim, kappas, corrected, sample_shape) -> dict[str, float]:
    generator = torch.Generator().manual_seed(dim)
    loc = torch.nn.functional.normalize(torch.randn(len(kappas), dim, generator=generator, dtype=torch.float64), dim=-1)
    kappa = torch.tensor(kappas, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(1234)
    log_weight = None
    if corrected is None:
        q = PowerSpherical(loc, kappa)
        z = q.rsample(sample_shape)
    elif corrected:
        q = VonMisesFisher(loc, kappa)
        z, log_weight = q.rsample_with_log_weight(sample_shape)
    else:
        q = VonMisesFisher(loc, kappa)
        z = q.rsample(sample_shape)
    next_draw = torch.rand((), dtype=torch.float64)
    ramp = torch.arange(z.numel(), dtype=torch.float64).reshape(z.shape) / z.numel()
    f = (z * ramp).sum(-1)
    loss = f.sum() + kl_divergence(q, HypersphericalUniform(dim, dtype=torch.float64)).sum()
    if corrected:
        loss = loss + q.grad_correction_surrogate(f, log_weight).sum()
    (grad,) = torch.autograd.grad(loss, kappa)
    values = {
        "z_sum": z.sum().item(),
        "z_ramp": (z * ramp).sum().item(),
        "next_draw": next_draw.item(),
        "kappa_grad": (grad * torch.arange(1, len(kappas) + 1)).sum().item(),
    }
    if log_weight is not None:
        positions = torch.arange(1, log_weight.numel() + 1).reshape(log_weight.shape)
        values["log_weight"] = (log_weight.detach() * positions).sum().item()
    return values


@pytest.mark.parametrize("case", REFERENCE_CASES)
def test_draws_equal_those_of_the_implementation_before_the_rewrite(case):
    """Same seed, same samples, same number of random draws, same gradients (to rounding of the
    checkpoint sums: a changed draw would differ at order 1)."""
    values = _reference_checkpoints(*REFERENCE_CASES[case])
    assert values.keys() == REFERENCE_VALUES[case].keys()
    for name, expected in REFERENCE_VALUES[case].items():
        assert math.isclose(values[name], expected, rel_tol=1e-12, abs_tol=1e-14), (name, values[name], expected)


def _filled(family, batch=3, dim=6) -> SphericalDistribution:
    generator = torch.Generator().manual_seed(1)
    loc = torch.nn.functional.normalize(torch.randn(batch, dim, generator=generator, dtype=torch.float64), dim=-1)
    kappa = torch.tensor([0.5, 7.0, 300.0], dtype=torch.float64)[:batch]
    return family(loc, kappa)


def _touch_caches(q: SphericalDistribution) -> None:
    for name in q._batch_shaped_caches:
        getattr(q, name)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_cache_is_a_lazy_property_of_batch_shape(family):
    q = _filled(family)
    assert q._batch_shaped_caches  # each family caches its normaliser at least
    for name in q._batch_shaped_caches:
        assert any(isinstance(vars(cls).get(name), lazy_property) for cls in family.__mro__), name
        assert name not in vars(q)  # lazy: nothing computed at construction
        assert getattr(q, name).shape == q.batch_shape
        assert name in vars(q)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("filled_before", [True, False])
def test_cached_values_equal_a_fresh_computation_after_expand(family, filled_before):
    q = _filled(family, batch=3)
    if filled_before:
        _touch_caches(q)
    expanded = q.expand((4, 3))
    assert expanded.batch_shape == (4, 3) and type(expanded) is family
    fresh = family(expanded.loc.contiguous(), expanded.scale.contiguous())
    for name in q._batch_shaped_caches:
        assert (name in vars(expanded)) == filled_before  # expanded only when computed already
        assert torch.equal(getattr(expanded, name), getattr(fresh, name)), name
    z = torch.nn.functional.normalize(torch.randn(2, 4, 3, 6, dtype=torch.float64), dim=-1)
    torch.testing.assert_close(expanded.log_prob(z), fresh.log_prob(z), rtol=0, atol=0)
    torch.testing.assert_close(expanded.entropy(), fresh.entropy(), rtol=0, atol=0)
    torch.testing.assert_close(expanded.mean, fresh.mean, rtol=0, atol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_an_expanded_instance_does_not_share_caches_with_another_concentration(family):
    """Expanding one instance and building another with a different κ: no value crosses over."""
    q = _filled(family, batch=1)
    _touch_caches(q)
    other = family(q.loc, q.scale * 2)
    for name in q._batch_shaped_caches:
        assert not torch.equal(getattr(q.expand((2,)), name), getattr(other.expand((2,)), name))


@pytest.mark.parametrize("family", FAMILIES)
def test_the_normaliser_is_computed_once_per_instance(family):
    q = _filled(family)
    z = q.sample((5,))
    q.log_prob(z)
    cached = {name: getattr(q, name) for name in q._batch_shaped_caches if name in vars(q)}
    assert cached  # log_prob filled the normaliser's cache
    q.log_prob(z), q.entropy(), q.kl_to_uniform(), q.mean
    for name, value in cached.items():
        assert getattr(q, name) is value, name


def test_vmf_log_bessel_is_evaluated_once_across_densities_and_kl(monkeypatch):
    import vae_lab.distributions.von_mises_fisher as module

    calls = []
    original = module.log_bessel_iv_normalized

    def counting(nu, kappa):
        calls.append(kappa.shape)
        return original(nu, kappa)

    monkeypatch.setattr(module, "log_bessel_iv_normalized", counting)
    q = _filled(VonMisesFisher)
    z = q.sample((5,))
    for _ in range(3):
        q.log_prob(z)
    q.entropy(), kl_divergence(q, HypersphericalUniform(6, dtype=torch.float64))
    assert len(calls) == 1  # once for the cached normaliser; plain sampling computes no log weight


@pytest.mark.parametrize("family", FAMILIES)
def test_kl_to_uniform_is_registered_once_for_the_base(family):
    q = _filled(family)
    kl = kl_divergence(q, HypersphericalUniform(6, dtype=torch.float64))
    torch.testing.assert_close(kl, q.kl_to_uniform())
    with pytest.raises(ValueError, match=f"{family.__name__} on S\\^5 and a uniform on S\\^4"):
        kl_divergence(q, HypersphericalUniform(5, dtype=torch.float64))


@pytest.mark.parametrize("family", FAMILIES)
def test_shapes_mode_support_and_bad_loc(family):
    q = _filled(family)
    assert q.batch_shape == (3,) and q.event_shape == (6,) and q.dim == 6
    assert torch.equal(q.mode, q.loc)
    assert bool(q.support.check(q.sample()).all())
    with pytest.raises(ValueError, match=f"{family.__name__} lives on the sphere"):
        family(torch.tensor([1.0]), torch.tensor(1.0))


def test_a_subclass_with_its_own_state_must_implement_expand():
    class WithState(VonMisesFisher):
        def __init__(self, loc, scale, extra):
            super().__init__(loc, scale)
            self.extra = extra

    with pytest.raises(NotImplementedError):
        WithState(_filled(VonMisesFisher).loc, 1.0, extra=3).expand((2, 3))
