"""Optimisers. AdamNormGrad: Adam on gradients divided by their L2 norm (VampPrior code)."""

from __future__ import annotations

import torch


class AdamNormGrad(torch.optim.Adam):
    """Each parameter's gradient is divided by its own L2 norm before the Adam update.

    With ``fused=True`` (the default config) the division happens inside torch's fused Adam
    kernel, whose ``grad_scale`` argument divides the gradient as it is read: one pass over the
    gradients less than dividing them first, with bit-identical results (tested).
    """

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if all(group["fused"] and not group["decoupled_weight_decay"] for group in self.param_groups):
            for group in self.param_groups:
                self._fused_normalised_step(group)
            return loss
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        if grads:
            torch._foreach_div_(grads, self._norms(grads))
        super().step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """As torch's, without its per-call profiler record and per-parameter checks, a visible
        share of a small model's step (README, "Speed")."""
        if not set_to_none:
            return super().zero_grad(set_to_none=False)
        for group in self.param_groups:
            for param in group["params"]:
                param.grad = None

    @staticmethod
    def _norms(grads: list[torch.Tensor]) -> list[torch.Tensor]:
        norms = torch._foreach_norm(grads)
        torch._foreach_add_(norms, 1e-12)  # an all-zero gradient stays zero
        return norms

    def _fused_normalised_step(self, group: dict) -> None:
        params, grads, avgs, squares, max_squares, steps = [], [], [], [], [], []
        self._init_group(group, params, grads, avgs, squares, max_squares, steps)
        if not params:
            return
        norms = self._norms(grads)
        torch._foreach_add_(steps, 1)
        beta1, beta2 = group["betas"]
        for i, param in enumerate(params):  # one kernel call per parameter: each has its own norm
            torch._fused_adam_(
                [param],
                [grads[i]],
                [avgs[i]],
                [squares[i]],
                max_squares[i : i + 1] if group["amsgrad"] else [],
                [steps[i]],
                amsgrad=group["amsgrad"],
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=group["maximize"],
                grad_scale=norms[i],
                found_inf=None,
            )
