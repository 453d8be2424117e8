"""The oneDNN linear backend (vae_lab.linear): same products and gradients as F.linear, the
same under torch.compile, picked by the one capability check, recorded by the run."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import cli_in_process
from vae_lab import capability
from vae_lab import linear as linear_module
from vae_lab.linear import Linear, linear_backend, set_linear_backend

pytestmark = pytest.mark.skipif(not capability.onednn_available(), reason="this torch build has no oneDNN linear")


@pytest.fixture
def backend():
    """Restore the process-wide backend after the test."""
    before = linear_backend()
    yield set_linear_backend
    set_linear_backend(before)


def reference(x, weight, bias):
    """F.linear in float64: both backends' fp32 results must lie within fp32 rounding of it."""
    x64, w64 = x.detach().double().requires_grad_(), weight.detach().double().requires_grad_()
    b64 = None if bias is None else bias.detach().double().requires_grad_()
    out = F.linear(x64, w64, b64)
    return out, [x64, w64, b64]


@pytest.mark.parametrize("shape", [(7, 33), (3, 5, 33)], ids=["2d", "3d"])
@pytest.mark.parametrize("with_bias", [True, False])
def test_onednn_product_and_gradients_match_float64(backend, shape, with_bias):
    backend("onednn")
    torch.manual_seed(0)
    layer = Linear(33, 17, bias=with_bias)
    x = torch.randn(shape, requires_grad=True)
    out = layer(x)
    assert out.shape == (*shape[:-1], 17) and out.dtype == torch.float32
    grad_out = torch.randn_like(out)
    out.backward(grad_out)
    expected, leaves = reference(x, layer.weight, layer.bias)
    expected.backward(grad_out.double())
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5)
    for ours, exact in zip([x, layer.weight, layer.bias], leaves, strict=True):
        if exact is not None:
            torch.testing.assert_close(ours.grad.double(), exact.grad, rtol=1e-5, atol=1e-5)


def test_a_2d_product_is_no_view_so_an_in_place_clamp_costs_autograd_no_copy(backend):
    """The Bernoulli head clamps its logits in place; on a view autograd would add a copy (CopySlices)."""
    backend("onednn")
    layer = Linear(8, 4)
    out = layer(torch.randn(5, 8)).clamp_(-1.0, 1.0)
    assert out._base is None and type(out.grad_fn).__name__ == "ClampBackward1"


def test_only_the_inputs_that_need_it_get_a_gradient(backend):
    backend("onednn")
    layer = Linear(8, 4)
    x = torch.randn(5, 8)  # data: no gradient wanted
    layer(x).sum().backward()
    assert x.grad is None and layer.weight.grad is not None and layer.bias.grad is not None
    torch.testing.assert_close(layer.bias.grad, torch.full((4,), 5.0))


def test_onednn_compiles_into_one_graph_with_the_same_result(backend):
    backend("onednn")
    torch.manual_seed(0)
    net = torch.nn.Sequential(Linear(20, 30), torch.nn.Tanh(), Linear(30, 3))
    x = torch.randn(16, 20)

    def loss_and_grads():
        net.zero_grad()
        loss = net(x).square().sum()
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in net.parameters()]

    eager_loss, eager_grads = loss_and_grads()
    compiled = torch.compile(lambda: net(x).square().sum(), fullgraph=True)  # a graph break fails here
    net.zero_grad()
    loss = compiled()
    loss.backward()
    torch.testing.assert_close(loss.detach(), eager_loss, rtol=1e-5, atol=1e-5)
    for p, expected in zip(net.parameters(), eager_grads, strict=True):
        torch.testing.assert_close(p.grad, expected, rtol=1e-5, atol=1e-5)


def test_torch_backend_is_f_linear_bit_for_bit(backend):
    backend("torch")
    layer = Linear(12, 6)
    x = torch.randn(4, 12)
    assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))


def test_bf16_autocast_and_other_dtypes_take_torchs_own_kernel(backend, monkeypatch):
    backend("onednn")
    calls = []
    monkeypatch.setattr(linear_module, "_product", lambda *args: calls.append(args) or F.linear(*args))
    layer = Linear(12, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(torch.randn(4, 12)).dtype == torch.bfloat16
    assert layer.double()(torch.randn(4, 12, dtype=torch.float64)).dtype == torch.float64
    assert calls == []
    layer.float()(torch.randn(4, 12))
    assert len(calls) == 1  # the plain fp32 product does go to oneDNN


@pytest.mark.parametrize(("vendor", "expected"), [("AuthenticAMD", "onednn"), ("GenuineIntel", "torch"), ("", "torch")])
def test_auto_picks_onednn_only_on_amd(backend, monkeypatch, vendor, expected):
    monkeypatch.setattr(capability, "cpu_vendor", lambda: vendor)
    assert backend("auto") == expected and linear_backend() == expected
    assert backend("torch") == "torch"  # an explicit choice is kept whatever the CPU


def test_unknown_backend_is_refused(backend):
    with pytest.raises(ValueError, match="linear_backend=mkl: expected one of auto, torch, onednn"):
        backend("mkl")


def test_the_run_records_the_backend_and_refuses_a_bad_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(capability, "cpu_vendor", lambda: "AuthenticAMD")
    run = tmp_path / "run"
    args = ["data=synthetic", "trainer.max_epochs=1", "eval.iw_samples_test=2", f"hydra.run.dir={run}"]
    before = linear_backend()
    try:
        code, out = cli_in_process(args, tmp_path, monkeypatch, capsys)
        assert code == 0, out
        assert "linear_backend=auto: fp32 linear layers on onednn (CPU vendor: AuthenticAMD)" in out
        assert json.loads((run / "metrics.json").read_text())["linear_backend"] == "onednn"
        code, out = cli_in_process(
            [*args[:-1], "linear_backend=fast", f"hydra.run.dir={tmp_path / 'bad'}"], tmp_path, monkeypatch, capsys
        )
        assert code != 0 and "linear_backend=fast: expected auto, torch or onednn" in out
    finally:
        set_linear_backend(before)
