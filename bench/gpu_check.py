"""The Python parts of bench/gpu_check.sh, each runnable on a CPU as well.
Each command ends with one ``table: ...`` line, the shell's summary table cell.

    python bench/gpu_check.py first-step --device cuda [overrides ...]   # CPU fp32 vs DEVICE: same loss?
    python bench/gpu_check.py metrics RUN_DIR                           # test metrics of metrics.json finite?
    python bench/gpu_check.py rates RUN_DIR                             # samples/s and points/s of a run

``first-step`` is the honest version of "the GPU's first training step computes the CPU's loss":
one model built from the real config (``vae_lab.config.compose_train_config``), copied to the
device with the same weights, the same first training batch (drawn once, on the CPU: a CUDA
generator would binarise differently), eval mode, and one z drawn once from the CPU posterior.
Both devices then compute the one-sample negative ELBO  -[log p(x|z) + log p(z) - log q(z|x)]
and the reconstruction at the posterior mean, using only the model's stable surface
(``posterior``, ``prior``, ``decode(z).log_prob``). fp32 with TF32 off must agree to ``--rtol``;
TF32 matmuls (what training sets) and bf16 autocast are reported, not judged.

Training runs load :class:`Throughput` as a callback (``PYTHONPATH=bench``,
``+callbacks.throughput._target_=gpu_check.Throughput``); it writes ``throughput.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

THROUGHPUT_FILE = "throughput.json"


# --- first-step loss: CPU vs device ---------------------------------------------------------
def first_batch(datamodule) -> torch.Tensor:
    """The first training batch (the first of the loader's first group of ``steps_per_call``)."""
    datamodule.setup("fit")  # no trainer attached: the tensors stay on the CPU
    group, _ = next(iter(datamodule.train_dataloader()))
    return group[0]


@torch.no_grad()
def loss_terms(model, x: torch.Tensor, z: torch.Tensor) -> dict[str, float]:
    """Batch means (nats per example) of the one-sample -ELBO at the given z, and its parts."""
    q = model.posterior(x)
    log_px = model.decode(z).log_prob(x)  # (B,)
    kl_estimate = q.log_prob(z) - model.prior().log_prob(z)  # (B,) one-sample log q - log p
    recon_at_mean = -model.decode(q.mean).log_prob(x)  # (B,) deterministic: no noise at all
    terms = {"neg_elbo": -log_px + kl_estimate, "recon": -log_px, "kl": kl_estimate, "recon_at_mean": recon_at_mean}
    return {name: value.double().mean().item() for name, value in terms.items()}


def relative_difference(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def first_step(overrides: list[str], device: str, rtol: float) -> bool:
    from hydra.utils import instantiate

    from vae_lab.config import compose_train_config

    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_train_config(overrides, tmp)
    torch.manual_seed(cfg.seed)
    # vae_lab.train.build would also make a Trainer, loggers and callbacks; this needs only these two.
    datamodule = instantiate(cfg.data.module)
    model = instantiate(cfg.model).eval()
    x = first_batch(datamodule)
    with torch.no_grad():
        z = model.posterior(x).rsample()  # the fixed noise, drawn once on the CPU

    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.allow_tf32 = False
    reference = loss_terms(model, x, z)
    other = copy.deepcopy(model).to(device)
    x_dev, z_dev = x.to(device), z.to(device)
    result = loss_terms(other, x_dev, z_dev)
    worst = max(relative_difference(reference[k], result[k]) for k in reference)
    ok = all(math.isfinite(v) for v in (*reference.values(), *result.values())) and worst <= rtol

    info = {}
    if torch.device(device).type == "cuda":  # what training runs with: TF32 matmuls
        torch.set_float32_matmul_precision("high")
        torch.backends.cudnn.allow_tf32 = True
        info["tf32"] = _info_difference(reference, other, x_dev, z_dev, contextlib.nullcontext())
        torch.set_float32_matmul_precision("highest")
    info["bf16 autocast"] = _info_difference(
        reference, other, x_dev, z_dev, torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    )

    print(
        f"first-step {'PASS' if ok else 'FAIL'} [{' '.join(overrides) or 'defaults'}] cpu vs {device}, "
        f"batch {tuple(x.shape)}: -ELBO {reference['neg_elbo']:.6f} vs {result['neg_elbo']:.6f} "
        f"(worst rel diff over {', '.join(reference)}: {worst:.2e}, tolerance {rtol:.0e}); "
        + ", ".join(f"{k}: {v} (info)" for k, v in info.items())
    )
    print(f"table: -ELBO {reference['neg_elbo']:.4f}, max rel diff {worst:.1e} (tol {rtol:.0e})")
    return ok


def _info_difference(reference: dict, model, x, z, context) -> str:
    """-ELBO's relative difference from the fp32 CPU reference under ``context``, or why it failed."""
    try:
        with context:
            return f"rel diff {relative_difference(reference['neg_elbo'], loss_terms(model, x, z)['neg_elbo']):.2e}"
    except Exception as err:  # reported, not judged: the training runs show whether it matters
        return f"{type(err).__name__}: {str(err).splitlines()[0][:100]}"


# --- run checks -------------------------------------------------------------------------------
def check_metrics(run_dir: Path) -> bool:
    path = run_dir / "metrics.json"
    if not path.is_file():
        print(f"metrics FAIL: no {path} (the run did not finish; see its log)")
        print("table: no metrics.json")
        return False
    metrics = json.loads(path.read_text())["metrics"]
    test = {k: v for k, v in metrics.items() if k.startswith("test/")}
    bad = {k: v for k, v in test.items() if not (isinstance(v, int | float) and math.isfinite(v))}
    ok = bool(test) and not bad
    shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(test.items()) if k not in bad)
    verdict = "PASS" if ok else "FAIL"
    print(f"metrics {verdict} {run_dir.name}: {shown or 'no test/* metrics'}" + (f"; bad {bad}" if bad else ""))
    headline = next((k for k in ("test/nll", "test/neg_elbo") if k in test), None)
    print(
        f"table: {len(test)} test metrics finite" + (f", {headline}={test[headline]:.3f}" if headline else "")
        if ok
        else f"table: not finite: {', '.join(bad) or 'no test/* metrics'}"
    )
    return ok


def print_rates(run_dir: Path) -> bool:
    path = run_dir / THROUGHPUT_FILE
    if not path.is_file():
        print(f"rates n/a {run_dir.name}: no {THROUGHPUT_FILE}")
        print(f"table: no {THROUGHPUT_FILE}")
        return False
    r = json.loads(path.read_text())
    train = r.get("train") or {}
    parts = [
        f"train {train.get('samples_per_s', float('nan')):.0f} samples/s over {train.get('steps', 0)} steps"
        f" (after {r.get('warmup_steps')} warm-up steps)"
    ]
    for stage in ("validate", "test"):
        if stage in r:
            parts.append(f"{stage} {r[stage]['points_per_s']:.0f} points/s ({r[stage]['points']} points)")
    print(f"rates {run_dir.name}: " + "; ".join(parts))
    test = r.get("test", {}).get("points_per_s", float("nan"))
    print(f"table: train {train.get('samples_per_s', float('nan')):.0f} samples/s, test {test:.0f} points/s")
    return True


class Throughput(L.Callback):
    """Training samples/s after ``warmup_steps`` (compilation and allocator warm-up excluded),
    validation during fit excluded; points/s of the final validation and test passes.

    The GPU runs asynchronously, so the clock is read after a synchronize, and only where a
    measured window opens or closes (never per step, which would stall the launch queue).
    """

    def __init__(self, out: str, warmup_steps: int = 50):
        self.out, self.warmup_steps = Path(out), warmup_steps
        self.train = {"seconds": 0.0, "samples": 0, "steps": 0}
        self.eval: dict[str, dict] = {}
        self._opened: tuple[float, int] | None = None  # (time, global step) of the open window
        self._eval_start, self._eval_points = 0.0, 0

    @staticmethod
    def _now(pl_module) -> float:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        return time.perf_counter()

    @staticmethod
    def _examples(batch) -> int:
        x = batch[0]
        return sum(len(part) for part in x) if isinstance(x, list) else len(x)

    def _close(self, trainer, pl_module) -> None:
        if self._opened is not None:
            started, step = self._opened
            self.train["seconds"] += self._now(pl_module) - started
            self.train["steps"] += trainer.global_step - step
            self._opened = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self._opened is None and trainer.global_step >= self.warmup_steps:
            self._opened = (self._now(pl_module), trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self._opened is not None:
            self.train["samples"] += self._examples(batch)

    def on_validation_start(self, trainer, pl_module):
        self._close(trainer, pl_module)  # reopened by the next training batch
        self._eval_start = self._now(pl_module)
        self._eval_points = 0

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._eval_points += self._examples(batch)

    def on_test_start(self, trainer, pl_module):
        self.on_validation_start(trainer, pl_module)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._eval_points += self._examples(batch)

    def _record_eval(self, trainer, pl_module, stage: str) -> None:
        seconds = self._now(pl_module) - self._eval_start
        points = self._eval_points
        self.eval[stage] = {"points": points, "seconds": seconds, "points_per_s": points / seconds}
        self._write(trainer)

    def on_validation_end(self, trainer, pl_module):
        if trainer.state.fn == "validate":  # the final pass, not the checks during fit
            self._record_eval(trainer, pl_module, "validate")

    def on_test_end(self, trainer, pl_module):
        self._record_eval(trainer, pl_module, "test")

    def on_train_end(self, trainer, pl_module):
        self._close(trainer, pl_module)
        self._write(trainer)

    def _write(self, trainer) -> None:
        if not trainer.is_global_zero:
            return
        train = dict(self.train)
        train["samples_per_s"] = train["samples"] / train["seconds"] if train["seconds"] else float("nan")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps({"warmup_steps": self.warmup_steps, "train": train, **self.eval}, indent=2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    step = sub.add_parser("first-step", help="CPU fp32 vs DEVICE: the same first-step loss?")
    step.add_argument("--device", default="cuda")
    step.add_argument("--rtol", type=float, default=1e-3)
    step.add_argument("overrides", nargs="*")
    sub.add_parser("metrics", help="test metrics of RUN_DIR/metrics.json finite?").add_argument("run_dir", type=Path)
    sub.add_parser("rates", help="samples/s and points/s of RUN_DIR").add_argument("run_dir", type=Path)
    args = parser.parse_args()
    if args.command == "first-step":
        return 0 if first_step(args.overrides, args.device, args.rtol) else 1
    if args.command == "metrics":
        return 0 if check_metrics(args.run_dir) else 1
    return 0 if print_rates(args.run_dir) else 1


if __name__ == "__main__":
    sys.exit(main())
