"""``logsumexp`` that stays fast on the CPU when most terms underflow.

Mixtures and importance weights are sums of exponentials that span hundreds of nats: an
aggregate posterior's log-densities at a sample, a VampPrior's over its pseudo-inputs. After
the shift by the maximum most terms are far below e^-87, where float32 ``exp`` underflows, and
torch's eager CPU ``exp`` leaves its vectorised path for arguments whose results are denormal or
zero (an order of magnitude slower per element: bench/README.md). Clamping the shifted arguments at
``FLOOR`` keeps every ``exp`` on the fast path. A clamped term is at most e^-80 against the
maximum's 1, far below float32 and float64 rounding of the sum, so the results are torch's to
the last bit in practice (tested against ``torch.logsumexp``), and so are the gradients, which
flow through the unclamped terms as softmax weights.
"""

from __future__ import annotations

import torch

FLOOR = -80.0  # e^-80 ≈ 1.8e-35: a normal float32, negligible beside the maximum term's 1
FAST_DTYPES = (torch.float32, torch.float64)  # half types: FLOOR is not negligible at their precision


def logsumexp(x: torch.Tensor, dim: int) -> torch.Tensor:
    """log Σ exp(x) along ``dim`` (the dimension removed), as ``torch.logsumexp``."""
    if x.dtype not in FAST_DTYPES or x.numel() == 0:
        return torch.logsumexp(x, dim=dim)
    peak = x.detach().amax(dim, keepdim=True)
    # A row of -inf (an empty mixture) or with +inf/NaN: the shift is 0 there and the result is
    # the row's peak, as torch.logsumexp gives.
    finite = torch.isfinite(peak)
    shift = torch.where(finite, peak, torch.zeros_like(peak))
    shifted = x - shift
    # In place where no gradient is traced (clamp's backward needs its input).
    shifted = shifted.clamp(min=FLOOR) if shifted.requires_grad else shifted.clamp_(min=FLOOR)
    total = shifted.exp_().sum(dim, keepdim=True).log()
    return torch.where(finite, total + shift, peak).squeeze(dim)
