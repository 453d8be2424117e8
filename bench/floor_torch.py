"""The floor: a hand-written plain-torch training loop of the default model, to measure vae_lab against.

    python bench/floor_torch.py [--steps 300] [--eager] [--check] [--out F]

Same model, data and optimiser as `python -m vae_lab.train` with the defaults (gated MLP 300,
latent 40, Bernoulli decoder with logits clamped as the VampPrior code, batch 100, dynamically
binarised MNIST, AdamNormGrad lr 5e-4), written as tensors and functions with no framework: no
Lightning, no distribution objects, no config. The loss (forward + backward) is `torch.compile`d
(`--eager`: not), and the per-parameter gradient normalisation is folded into torch's fused Adam
kernel (its `grad_scale` argument divides the gradient inside the update). Its matmuls are the
fastest this machine offers, as vae_lab's own: `vae_lab.linear.linear` on the backend
`linear_backend=auto` picks (oneDNN on AMD CPUs; `--linear-backend torch` for torch's default).

The weights start as vae_lab's (same seed, copied from the composed model), and `--check`
first runs a few steps of this loop eagerly beside vae_lab's own step (`VAEModule.training_loss`
+ `vae_lab.optim.AdamNormGrad`) on the same batches and noise, and fails unless loss and
parameters agree: the floor is the same computation, not a cheaper one.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from step_rates import rates, save_result  # sibling script (bench/ is on sys.path when run as a script)
from train_ours import linear_flops_per_example

from vae_lab.compiling import torch_compile
from vae_lab.config import compose_train_config
from vae_lab.data.images import load_mnist_dynamic
from vae_lab.linear import linear, set_linear_backend

BATCH = 100
LR = 5e-4
MIN_LOGVAR, MAX_LOGVAR = -6.0, 2.0
MAX_LOGIT = math.log((1 - 1e-5) / 1e-5)


def vae_lab_model():
    """vae_lab's default model, composed from the real config (its initial weights are the floor's)."""
    import hydra

    torch.manual_seed(0)
    cfg = compose_train_config(["logger=[]"])
    return hydra.utils.instantiate(cfg.model)


def weights_of(model) -> list[torch.Tensor]:
    """Fresh leaf copies of the model's Linear weights, in forward order: encoder, head, decoder, head."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    return [t.detach().clone().requires_grad_() for m in linears for t in (m.weight, m.bias)]


def gated(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    value, gate = linear(h, weight, bias).chunk(2, dim=-1)
    return value * torch.sigmoid(gate)


def loss_fn(params: list[torch.Tensor], x: torch.Tensor, eps: torch.Tensor, beta: torch.Tensor):
    e1w, e1b, e2w, e2b, qw, qb, d1w, d1b, d2w, d2b, ow, ob = params
    h = gated(gated(x, e1w, e1b), e2w, e2b)
    mean, logvar = linear(h, qw, qb).chunk(2, dim=-1)
    logvar = logvar.clamp(MIN_LOGVAR, MAX_LOGVAR)
    std = torch.exp(0.5 * logvar)
    z = mean + std * eps
    logits = linear(gated(gated(z, d1w, d1b), d2w, d2b), ow, ob).clamp(-MAX_LOGIT, MAX_LOGIT)
    log_px = (x * logits - F.softplus(logits)).sum(-1)
    kl = 0.5 * (mean.square() + std.square() - 1.0 - logvar).sum(-1)
    return (beta * kl - log_px).mean()


class NormGradAdam:
    """Adam on each gradient divided by its own L2 norm: the norm enters the fused kernel as grad_scale."""

    def __init__(self, params: list[torch.Tensor]):
        self.params = params
        self.avg = [torch.zeros_like(p) for p in params]
        self.sq = [torch.zeros_like(p) for p in params]
        self.steps = [torch.zeros((), dtype=torch.float32) for _ in params]

    @torch.no_grad()
    def step(self) -> None:
        grads = [p.grad for p in self.params]
        norms = torch._foreach_norm(grads)
        torch._foreach_add_(norms, 1e-12)
        torch._foreach_add_(self.steps, 1)
        for i, p in enumerate(self.params):
            torch._fused_adam_(
                [p], [grads[i]], [self.avg[i]], [self.sq[i]], [], [self.steps[i]],
                amsgrad=False, lr=LR, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8,
                maximize=False, grad_scale=norms[i], found_inf=None,
            )  # fmt: skip

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


def binarised_batches(train: torch.Tensor, seed: int = 0):
    """Shuffled batches of BATCH images, re-binarised at each draw (as vae_lab's training loader)."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        for index in torch.randperm(len(train), generator=generator).split(BATCH):
            x = train[index]
            yield (torch.rand(x.shape, generator=generator) < x).to(x.dtype)


def check_against_vae_lab(train: torch.Tensor, steps: int = 5) -> dict:
    """Eager floor steps beside vae_lab's step on the same batches and noise: loss and parameters agree."""
    from vae_lab.optim import AdamNormGrad

    model = vae_lab_model()
    params = weights_of(model)
    ours_optimizer = AdamNormGrad(model.parameters(), lr=LR, fused=True)
    floor_optimizer = NormGradAdam(params)
    batches = binarised_batches(train)
    worst_loss = 0.0
    for step in range(steps):
        x = next(batches)
        torch.manual_seed(100 + step)
        ours, _, _, _ = model.training_loss(x, 1.0)  # draws its reparameterisation noise from the global stream
        torch.manual_seed(100 + step)
        eps = torch.randn(BATCH, model.latent.latent_dim)
        floor = loss_fn(params, x, eps, torch.tensor(1.0))
        worst_loss = max(worst_loss, abs(ours.item() - floor.item()) / abs(ours.item()))
        ours_optimizer.zero_grad()
        ours.backward()
        ours_optimizer.step()
        floor_optimizer.zero_grad()
        floor.backward()
        floor_optimizer.step()
    worst_param = max((a - b).abs().max().item() for a, b in zip(weights_of(model), params, strict=True))
    agree = worst_loss < 1e-5 and worst_param < 1e-5
    print(f"check: {steps} steps, max relative loss difference {worst_loss:.1e}, max parameter difference "
          f"{worst_param:.1e} -> {'same computation' if agree else 'DIFFERENT'}")  # fmt: skip
    if not agree:
        raise SystemExit("the floor loop does not compute vae_lab's step; fix it before timing it")
    return {"steps": steps, "max_rel_loss_diff": worst_loss, "max_param_diff": worst_param}


class FloorLoop:
    """The floor's training loop: vae_lab's initial weights, NormGradAdam, binarised batches, and the
    loss compiled or not; ``step`` takes one optimiser step (batch draw, noise, loss, backward, update)."""

    def __init__(self, train: torch.Tensor, compiled: bool):
        self.model = vae_lab_model()  # only its initial weights and shapes are used
        self.params = weights_of(self.model)
        self.optimizer = NormGradAdam(self.params)
        self.loss_fn = torch_compile(loss_fn) if compiled else loss_fn
        self.batches = binarised_batches(train)
        self.beta = torch.tensor(1.0)

    def step(self) -> torch.Tensor:
        eps = torch.randn(BATCH, self.model.latent.latent_dim)
        loss = self.loss_fn(self.params, next(self.batches), eps, self.beta)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss

    def run(self, steps: int) -> float:
        """Seconds for ``steps`` steps."""
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        return time.perf_counter() - start


def measure(train: torch.Tensor, steps: int, warmup: int, compiled: bool) -> dict:
    loop = FloorLoop(train, compiled)
    model = loop.model
    ends, start = [], time.perf_counter()
    for step in range(warmup + steps):
        loss = loop.step()
        if step == 0:
            compile_s = time.perf_counter() - start
        if step >= warmup - 1:
            ends.append(time.perf_counter())
    first = next(m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear))
    flops = linear_flops_per_example(model, first)
    timed = rates(ends, BATCH)
    return {
        "compiled": compiled,
        "first_step_s": compile_s,
        "steps_timed": timed["steps"],
        "samples_per_s": timed["samples_per_s"],
        "best_window_samples_per_s": timed["best_window_samples_per_s"],
        "achieved_gflops": timed["samples_per_s"] * flops / 1e9,
        "final_loss": loss.item(),
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup-steps", type=int, default=30)
    parser.add_argument("--eager", action="store_true", help="do not compile the loss")
    parser.add_argument("--check", action="store_true", help="first check the loop against vae_lab's own step")
    parser.add_argument("--linear-backend", default="auto", help="auto, torch or onednn (vae_lab's linear_backend)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    train = load_mnist_dynamic(root=None).train
    result = {"linear_backend": set_linear_backend(args.linear_backend)}
    result |= {"check": check_against_vae_lab(train)} if args.check else {}
    result |= measure(train, args.steps, args.warmup_steps, compiled=not args.eager)
    save_result(result, args.out)


if __name__ == "__main__":
    main()
