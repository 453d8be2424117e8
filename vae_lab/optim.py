"""Optimisers. AdamNormGrad: Adam on gradients divided by their L2 norm (VampPrior code)."""

from __future__ import annotations

import torch


class AdamNormGrad(torch.optim.Adam):
    """Each parameter's gradient is divided by its own L2 norm before the Adam update."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        if grads:
            norms = torch._foreach_norm(grads)
            torch._foreach_add_(norms, 1e-12)  # an all-zero gradient stays zero
            torch._foreach_div_(grads, norms)
        super().step()
        return loss
