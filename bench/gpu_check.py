"""The Python parts of bench/gpu_check.sh, each runnable on a CPU as well.
Each command ends with a ``table: ...`` line (``first-step``: a ``table NAME: ...`` line per case),
the shell's summary table cell.

    python bench/gpu_check.py first-step --device cuda NAME=[overrides] ...  # CPU fp32 vs DEVICE: same loss?
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
``+callbacks.throughput._target_=gpu_throughput.Throughput``, bench/gpu_throughput.py); it writes
``throughput.json``. torch is imported only by ``first-step``: the other commands read files.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import sys
import tempfile
from pathlib import Path

THROUGHPUT_FILE = "throughput.json"  # where bench/gpu_check.sh has gpu_throughput.Throughput write


# --- first-step loss: CPU vs device ---------------------------------------------------------
def first_batch(datamodule):
    """The first training batch (the first of the loader's first group of ``steps_per_call``)."""
    datamodule.setup("fit")  # no trainer attached: the tensors stay on the CPU
    group, _ = next(iter(datamodule.train_dataloader()))
    return group[0]


def loss_terms(model, x, z) -> dict[str, float]:
    """Batch means (nats per example) of the one-sample -ELBO at the given z, and its parts."""
    import torch

    with torch.no_grad():
        q = model.posterior(x)
        log_px = model.decode(z).log_prob(x)  # (B,)
        kl_estimate = q.log_prob(z) - model.prior().log_prob(z)  # (B,) one-sample log q - log p
        recon_at_mean = -model.decode(q.mean).log_prob(x)  # (B,) deterministic: no noise at all
    terms = {"neg_elbo": -log_px + kl_estimate, "recon": -log_px, "kl": kl_estimate, "recon_at_mean": recon_at_mean}
    return {name: value.double().mean().item() for name, value in terms.items()}


def relative_difference(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def first_step(name: str, overrides: list[str], device: str, rtol: float) -> bool:
    """One case; prints its verdict and a ``table NAME: ...`` line."""
    import torch
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
        f"first-step {'PASS' if ok else 'FAIL'} {name} [{' '.join(overrides) or 'defaults'}] cpu vs {device}, "
        f"batch {tuple(x.shape)}: -ELBO {reference['neg_elbo']:.6f} vs {result['neg_elbo']:.6f} "
        f"(worst rel diff over {', '.join(reference)}: {worst:.2e}, tolerance {rtol:.0e}); "
        + ", ".join(f"{k}: {v} (info)" for k, v in info.items())
    )
    print(f"table {name}: -ELBO {reference['neg_elbo']:.4f}, max rel diff {worst:.1e} (tol {rtol:.0e})")
    return ok


def first_steps(cases: list[str], device: str, rtol: float) -> bool:
    """Every ``NAME=overrides`` case in one process (one torch import); a crash fails only its case."""
    ok = True
    for case in cases:
        name, _, overrides = case.partition("=")
        try:
            ok &= first_step(name, overrides.split(), device, rtol)
        except Exception as err:
            print(f"first-step FAIL {name}: {type(err).__name__}: {err}")
            print(f"table {name}: {type(err).__name__}: {str(err).splitlines()[0][:100] if str(err) else ''}")
            ok = False
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    step = sub.add_parser("first-step", help="CPU fp32 vs DEVICE: the same first-step loss?")
    step.add_argument("--device", default="cuda")
    step.add_argument("--rtol", type=float, default=1e-3)
    step.add_argument("cases", nargs="+", help="NAME=OVERRIDES, e.g. gauss= vamp=prior=vamp")
    sub.add_parser("metrics", help="test metrics of RUN_DIR/metrics.json finite?").add_argument("run_dir", type=Path)
    sub.add_parser("rates", help="samples/s and points/s of RUN_DIR").add_argument("run_dir", type=Path)
    args = parser.parse_args()
    if args.command == "first-step":
        return 0 if first_steps(args.cases, args.device, args.rtol) else 1
    if args.command == "metrics":
        return 0 if check_metrics(args.run_dir) else 1
    return 0 if print_rates(args.run_dir) else 1


if __name__ == "__main__":
    sys.exit(main())
