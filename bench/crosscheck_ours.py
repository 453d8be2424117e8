"""Same-budget cross-check, vae_lab half: score pythae's trained models with vae_lab's
importance-sampled estimator, train vae_lab's own models at the same budget, and write the table.

    python bench/crosscheck_ours.py [--epochs 10] [--samples 500] [--test-points 2000]

Reads what ``bench/crosscheck_pythae.py`` left in ``--out-dir`` (weights and its ``get_nll``
figure per model and seed) and adds, per model and seed:
  - pythae's model scored by ``vae_lab.metrics.likelihood.importance_sampled_log_likelihood``
    with the same samples and test points (rebuilt in plain torch from ``bench/peer_nets.py``:
    the distributions as pythae trains them, so a gap to ``get_nll`` is the estimator's);
  - vae_lab trained through its CLI with the same networks, data, optimiser, batch size and
    epochs, scored by its own test evaluation (``test/nll`` in the run's metrics.json).
The table goes to ``--out-dir``/crosscheck.md (and is printed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from matmul_rate import cpu_model
from peer_nets import PROTOCOLS, build_nets
from torch.distributions import Independent, Normal

from vae_lab.data.images import load_mnist_static
from vae_lab.distributions.gaussian_mixture import DiagonalGaussianMixture
from vae_lab.distributions.hyperspherical_uniform import HypersphericalUniform
from vae_lab.distributions.von_mises_fisher import VonMisesFisher
from vae_lab.metrics.likelihood import importance_sampled_log_likelihood

# vae_lab's side of each model: the same nets, data, optimiser, batch and no KL warm-up.
OURS = {
    "vae": ["prior=gauss"],
    "vamp": ["prior=vamp"],
    # The hyperspherical protocol's nets; latent 10 = the ambient dimension, as pythae's latent_dim.
    "svae": ["experiment=svae_mnist", "experiment_data=[mnist_static]", "d_convention=ambient", "latent=10"],
}


def posterior_and_prior(kind: str, encoder, weights: dict, x: torch.Tensor):
    """q(z|x) and p(z) of pythae 0.1.2's models as they train (their forward passes)."""
    first, second = encoder(x)
    if kind == "svae":  # direction normalised, κ = softplus(output) + 1 (get_nll drops the + 1)
        kappa = F.softplus(second).squeeze(-1) + 1.0
        return VonMisesFisher(F.normalize(first, dim=-1), kappa), HypersphericalUniform(first.shape[-1])
    q = Independent(Normal(first, (0.5 * second).exp()), 1)
    if kind == "vae":
        return q, Independent(Normal(torch.zeros_like(first[0]), torch.ones_like(first[0])), 1)
    # VAMP: pseudo-input k = Hardtanh(0, 1)(W e_k + b); p(z) = the mean of q(z | u_k).
    layer = weights["pseudo_inputs"]
    mu_k, log_var_k = encoder((layer["weight"].T + layer["bias"]).clamp(0.0, 1.0))
    return q, DiagonalGaussianMixture(mu_k, (0.5 * log_var_k).exp())


@torch.no_grad()
def score_pythae_model(kind: str, weights: dict, test: torch.Tensor, samples: int, seed: int) -> float:
    encoder, decoder = build_nets(kind)
    encoder.load_state_dict(weights["encoder"])
    decoder.load_state_dict(weights["decoder"])
    torch.manual_seed(seed)
    total = 0.0
    for x in test.split(100):
        q, prior = posterior_and_prior(kind, encoder, weights, x)

        def log_px(z, x=x):
            logits = decoder(z)
            return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)

        total += importance_sampled_log_likelihood(q, prior, log_px, samples, chunk_size=100).sum().item()
    return -total / len(test)


def train_ours(kind: str, seed: int, args, run_dir: Path) -> dict:
    protocol = PROTOCOLS[kind]
    overrides = [
        *OURS[kind],
        "data=mnist_static",
        f"seed={seed}",
        f"trainer.max_epochs={args.epochs}",
        "warmup=0",
        "optimizer=adam",
        f"optimizer.lr={protocol['lr']}",
        f"data.module.batch_size={protocol['batch']}",
        f"data.module.limit_test={args.test_points}",
        f"eval.iw_samples_test={args.samples}",
        "eval.iw_samples_val=0",
        "eval.hole_samples=0",
        "eval_ckpt=best",
        "logger=csv",
        f"hydra.run.dir={run_dir}",
    ]
    if not (run_dir / "metrics.json").exists():
        command = [sys.executable, "-m", "vae_lab.train", *overrides]
        if args.threads:
            command.append(f"threads={args.threads}")
        start = time.perf_counter()
        with open(run_dir.parent / f"{run_dir.name}.log", "w") as log:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
        (run_dir / "wall_s.txt").write_text(f"{time.perf_counter() - start:.1f}\n")
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    wall = run_dir / "wall_s.txt"
    return {"nll": metrics["test/nll"], "wall_s": float(wall.read_text()) if wall.exists() else None}


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["vae", "vamp", "svae"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--test-points", type=int, default=2000)
    parser.add_argument("--out-dir", type=Path, default=Path("bench/out/crosscheck"))
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    test = load_mnist_static().test[: args.test_points]
    rows, summary = [], []
    for kind in args.models:
        cells = {"get_nll": [], "ours_on_pythae": [], "ours": []}
        for seed in args.seeds:
            ours = train_ours(kind, seed, args, args.out_dir / f"ours_{kind}_seed{seed}")
            cells["ours"].append(ours["nll"])
            peer_json = args.out_dir / f"pythae_{kind}_seed{seed}.json"
            if not peer_json.exists():  # the pythae half has not reached it (yet): ours alone
                print(f"{peer_json} is missing: run bench/crosscheck_pythae.py (in .venv-bench) for it")
                wall = ours["wall_s"] or float("nan")
                rows.append(f"| {kind} | {seed} | – | – | {ours['nll']:.2f} | – | {wall:.0f} |")
                continue
            peer = json.loads(peer_json.read_text())
            if (peer["epochs"], peer["samples"], peer["test_points"]) != (args.epochs, args.samples, len(test)):
                sys.exit(f"{peer_json} was made with other --epochs/--samples/--test-points; rerun both halves alike")
            weights = torch.load(args.out_dir / f"pythae_{kind}_seed{seed}.pt")
            rescored = score_pythae_model(kind, weights, test, args.samples, seed)
            cells["get_nll"].append(peer["nll_by_pythae_get_nll"])
            cells["ours_on_pythae"].append(rescored)
            rows.append(
                f"| {kind} | {seed} | {peer['nll_by_pythae_get_nll']:.2f} | {rescored:.2f} | {ours['nll']:.2f} "
                f"| {peer['train_s']:.0f} | {ours['wall_s'] or float('nan'):.0f} |"
            )
        summary.append(f"| {kind} | {' | '.join(mean_std(v) for v in cells.values())} |")
    lines = [
        f"Same budget: {args.epochs} epochs, static binarised MNIST, test NLL (nats) on the first "
        f"{len(test)} test images with {args.samples} importance samples; CPU: {cpu_model()}; "
        f"mean ± std over seeds {', '.join(map(str, args.seeds))}.",
        "",
        "| model | pythae, its get_nll | pythae, vae_lab's estimator | vae_lab |",
        "|---|---:|---:|---:|",
        *summary,
        "",
        "| model | seed | pythae, get_nll | pythae, vae_lab's estimator | vae_lab | pythae train s | vae_lab run s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]
    (args.out_dir / "crosscheck.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
