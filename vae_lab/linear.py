"""fp32 linear products (Linear layers, the Gaussian mixtures' matmul) on oneDNN where torch's MKL is slow.

torch's CPU build multiplies fp32 matrices with Intel MKL, whose kernels on AMD processors reach
about half the rate of oneDNN's (also inside torch; bench/README.md has the figures). ``linear``
routes a layer through oneDNN when ``linear_backend`` (config key of the same name) resolves to
``onednn``: ``auto`` picks it on AMD CPUs (``vae_lab.capability.fast_fp32_linear_backend``) and
keeps torch's default elsewhere. Both compute in fp32 with fp32 accumulation; only the summation
order differs (last bits, as between two BLAS builds).

The oneDNN product has its own backward (also oneDNN), so autograd and DDP's gradient hooks see an
ordinary op; under ``torch.compile`` it is a registered custom op with a shape-only "fake" version.
bf16 autocast, other dtypes and devices take torch's own ``F.linear``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vae_lab.capability import AUTO, LINEAR_BACKENDS, ONEDNN, fast_fp32_linear_backend, onednn_available

_backend = "torch"  # the resolved process-wide choice; set_linear_backend changes it


def set_linear_backend(requested: str) -> str:
    """Resolve ``auto`` / ``torch`` / ``onednn`` for this machine and use it from now on; returns the choice."""
    global _backend
    if requested not in (AUTO, *LINEAR_BACKENDS):
        raise ValueError(f"linear_backend={requested}: expected one of auto, {', '.join(LINEAR_BACKENDS)}")
    chosen = fast_fp32_linear_backend() if requested == AUTO else requested
    if chosen == ONEDNN and not onednn_available():
        raise ValueError(
            "linear_backend=onednn: this torch build has no oneDNN linear; use linear_backend=auto or torch"
        )
    _backend = chosen
    return chosen


def linear_backend() -> str:
    return _backend


def _product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x (N, in) @ weight (out, in)ᵀ + bias (out,) on oneDNN, which takes strided (transposed) operands as they are."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def _save_operands(ctx, inputs, output) -> None:
    """What both backwards need: the operands, and whether there was a bias."""
    x, weight, bias = inputs
    ctx.save_for_backward(x, weight)
    ctx.has_bias = bias is not None


def _gradients(ctx, grad, product):
    """The input, weight and bias gradients (each None where not needed), with ``product`` too."""
    x, weight = ctx.saved_tensors
    needs_x, needs_weight, needs_bias = ctx.needs_input_grad
    return (
        product(grad, weight.t(), None) if needs_x else None,  # grad @ weight
        product(grad.t(), x.t(), None) if needs_weight else None,  # gradᵀ @ x
        grad.sum(0) if needs_bias and ctx.has_bias else None,
    )


class _EagerProduct(torch.autograd.Function):
    """The product for eager code: an autograd.Function costs less per call than the custom op."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        _save_operands(ctx, (x, weight, bias), None)
        return _product(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        return _gradients(ctx, grad, _product)


# For torch.compile: a registered op with a shape-only version, which the compiler keeps as one
# opaque call and fuses the elementwise work around.
@torch.library.custom_op("vae_lab::onednn_linear", mutates_args=())
def onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return _product(x, weight, bias)


@onednn_linear.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return x.new_empty(x.shape[0], weight.shape[0])


def _compiled_backward(ctx, grad: torch.Tensor):
    # The backward's products are this op too: inductor's own lowering of the raw oneDNN op expects
    # a constant, pre-packed weight.
    return _gradients(ctx, grad, onednn_linear)


onednn_linear.register_autograd(_compiled_backward, setup_context=_save_operands)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear``, on oneDNN where the backend says so and the product is a plain fp32 CPU one."""
    if (
        _backend != ONEDNN
        or x.device.type != "cpu"
        or x.dtype != torch.float32
        or weight.dtype != torch.float32
        or torch.is_autocast_enabled("cpu")  # bf16-mixed: torch's autocast casts and picks the kernel
    ):
        return F.linear(x, weight, bias)
    product = onednn_linear if torch.compiler.is_compiling() else _EagerProduct.apply
    if x.dim() == 2:  # no view of the output: an in-place op on it (a clamp_) would cost autograd a copy
        return product(x, weight, bias)
    out = product(x.reshape(-1, x.shape[-1]), weight, bias)
    return out.reshape(*x.shape[:-1], weight.shape[0])


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, initialisation and checkpoints) computed by :func:`linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
