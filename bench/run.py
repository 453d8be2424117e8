"""`make bench`: every benchmark in one run, one after the other, then the headline ratios.

Each measurement is a standalone script writing JSON under bench/out/; peers run in the
separate benchmark environment .venv-bench (bench/peer_env.sh), ours in .venv. Running them in
one go on the same machine state is what makes the ratios meaningful.

This VM's speed drifts by up to ±30 % over minutes (other tenants), so the Gaussian-VAE
comparison runs in interleaved rounds (ours, pythae, ours with other options, ...) and the
headline is the median over rounds of the ratio within each round.

    python bench/run.py [--only train eval vamp vmf text dg conv sweep] [--quick] [--rounds 5] [--budget 14]

It keeps to a time budget (``--budget`` minutes, 14 by default): on a machine slower than the one
the plan was sized on, the rest of the plan runs short once it would overrun (bench/budget.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from budget import Budget  # sibling module (bench/ is on sys.path when run as a script)

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
OURS = sys.executable
PEER = str(BENCH.parent / ".venv-bench" / "bin" / "python")


# The default model (gated MLP 300, latent 40, batch 100) with each speed option; name -> overrides.
# The defaults are steps_per_call=10, fp32 and compile=auto, which stays eager for a run this short.
TRAIN_VARIANTS = {
    "train_ours": [],
    "train_ours_compile": ["compile=true"],
    "train_ours_torch_linear": ["linear_backend=torch"],  # torch's default matmul library (Intel MKL)
    "train_ours_bf16_compile": ["trainer.precision=bf16-mixed", "compile=true"],
}


ISA_LIMITS = ("ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY")


def machine_line() -> tuple[str, bool]:
    """The CPU model and what it runs natively (the bf16 variants need native bf16 to be fast)."""
    from matmul_rate import cpu_model

    from vae_lab import capability

    native = capability.cpu_has_native_bf16()
    # Set, these make a newer CPU behave like an older one (e.g. AVX-512 restricted to AVX2): say so.
    restricted = [f"{k}={os.environ[k]}" for k in ISA_LIMITS if os.environ.get(k)]
    note = f" (instruction set restricted by {' '.join(restricted)})" if restricted else ""
    linear = f"fp32 linear layers (linear_backend=auto): {capability.fast_fp32_linear_backend()}"
    return f"machine: {cpu_model()}; {capability.describe('cpu')}; {linear}{note}", native


def suites(quick: bool, rounds: int, native_bf16: bool = True) -> dict[str, list[tuple[str, list[str]]]]:
    steps = ["--steps", "100"] if quick else []
    peer_steps = [*steps, "--epoch-samples", "10000"] if quick else []  # pythae's trainer: one shorter epoch
    train = [("matmul_rate", [OURS, "matmul_rate.py", *([] if native_bf16 else ["--no-bf16"])])]
    # Without native bf16 the bf16 variants would time a generic fallback kernel for minutes.
    kept = {n: o for n, o in TRAIN_VARIANTS.items() if native_bf16 or not any("bf16" in x for x in o)}
    vamp_precision = [] if native_bf16 else ["--precision", "32-true"]
    for r in range(rounds):
        variants = [(f"{name}_r{r}", [OURS, "train_ours.py", *steps, *o]) for name, o in kept.items()]
        # The floor loop is checked against our step once (first round), then only timed.
        floor = (f"floor_r{r}", [OURS, "floor_torch.py", *steps, *(["--check"] if r == 0 else [])])
        # The same loop uncompiled: the best an eager step (the defaults' on a run this short) can do.
        floor_eager = (f"floor_eager_r{r}", [OURS, "floor_torch.py", "--eager", *steps])
        # pythae and the floors right after our default run: they share the machine's state of the moment.
        peer = (f"peer_vae_r{r}", [PEER, "peer_pythae.py", "vae", *steps])
        train += [variants[0], peer, floor, floor_eager, *variants[1:]]
    # The defaults through Lightning and the floors paired within one process (drift cancels per round).
    train.append(("lightning_step_ratio", [OURS, "lightning_step_ratio.py", *(["--rounds", "5"] if quick else [])]))
    return {
        "train": train,
        "eval": [
            ("eval_ours", [OURS, "eval_ours.py", *(["--rounds", "2"] if quick else [])]),
            ("logsumexp_rate", [OURS, "logsumexp_rate.py"]),
        ],
        "vamp": [
            ("vamp_ours", [OURS, "vamp_ours.py", *steps, *vamp_precision]),
            # Only the row the summary compares with (pythae's S = 5000 VampPrior pass alone takes a minute).
            (
                "peer_vamp",
                [PEER, "peer_pythae.py", "vamp", "nll", "--nll-models", "vamp", "--nll-samples", "500", *peer_steps],
            ),
        ],
        "vmf": [("vmf_sampling", [PEER, "vmf_sampling.py", *(["--min-seconds", "0.2"] if quick else [])])],
        "text": [("text_lstm", [OURS, "text_lstm.py", *(["--blocks", "3"] if quick else [])])],
        "dg": [("density_gap", [OURS, "density_gap.py", *(["--prior-samples", "12800"] if quick else [])])],
        "conv": [("conv_train", [OURS, "conv_train.py", *(["--steps", "30"] if quick else [])])],
        "sweep": [("sweep_throughput", [OURS, "sweep_throughput.py", *(["--epochs", "1"] if quick else [])])],
    }


def run(name: str, command: list[str]) -> tuple[dict | None, float]:
    """Run one item; its JSON result (None if it failed) and its wall time."""
    out = OUT / f"{name}.json"
    out.unlink(missing_ok=True)
    if command[0] == PEER and not Path(PEER).exists():
        print(f"[{name}] skipped: {PEER} missing (run bash bench/peer_env.sh)")
        return None, 0.0
    print(f"\n=== {name}: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(command))}", flush=True)
    start = time.perf_counter()
    done = subprocess.run([*command, "--out", str(out)], cwd=BENCH, env={**os.environ, "PYTHONPATH": str(BENCH.parent)})
    seconds = time.perf_counter() - start
    print(f"[{name}] exit {done.returncode} after {seconds:.0f} s", flush=True)
    return (json.loads(out.read_text()) if out.exists() else None), seconds


def run_within(budget: Budget, plan: list[tuple[str, list[str], list[str]]]) -> dict[str, dict | None]:
    """Each item of ``plan`` (name, full command, quick command) in the form the budget allows."""
    results = {}
    names = [name for name, _, _ in plan]
    for i, (name, full, quick) in enumerate(plan):
        form = budget.plan(name, names[i:])
        if form is None:
            continue
        results[name], seconds = run(name, quick if form == "quick" else full)
        budget.record(name, seconds, quick=form == "quick")
    return results


def dig(data: dict | None, *keys, default=None):
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


def _vamp_lines(ours: dict | None, peer: dict | None) -> list[str]:
    if not ours:
        return []
    train = {run["precision"]: run["samples_per_s"] for run in ours.get("training", [])}
    ours_eval = next((r["points_per_s"] for r in ours.get("evaluation", []) if r["num_samples"] == 500), None)
    peer_train = dig(peer, "vamp", "trainer", "samples_per_s")
    peer_eval = next(
        (
            r["points_per_s"]
            for r in dig(peer, "nll", "runs", default=[])
            if r["model"] == "vamp" and r["n_samples"] == 500
        ),
        None,
    )
    fp32, bf16 = train.get("32-true"), train.get("bf16-mixed")
    return [
        "VampPrior (K 500, latent 40, gated MLP 300, batch 100, static MNIST):",
        f"  training samples/s: vae_lab fp32 {fp32 or 0:,.0f} | "
        + (f"bf16-mixed {bf16:,.0f} " if bf16 else "bf16-mixed skipped (no native bf16) ")
        + f"| pythae {peer_train or 0:,.0f}"
        f" -> {ratio(fp32, peer_train)} (target >= 1.8x), bf16 {ratio(bf16, peer_train)} (target >= 3x)",
        f"  test NLL points/s at S=500: vae_lab {ours_eval or 0:,.1f} | pythae get_nll {peer_eval or 0:,.1f}"
        f" -> {ratio(ours_eval, peer_eval)} (target >= 10x)",
    ]


def _vmf_lines(data: dict | None) -> list[str]:
    rows = dig(data, "results", default=[])
    ours = {(r["dim"], r["kappa"]): r for r in rows if r["implementation"] == "vae_lab-vMF"}
    peer = {(r["dim"], r["kappa"]): r for r in rows if r["implementation"] == "pythae-vMF"}
    if not ours:
        return []
    ratios = {k: ours[k]["samples_per_s"] / peer[k]["samples_per_s"] for k in ours if k in peer}
    worst = min(ratios, key=ratios.get) if ratios else None
    bad = sum(r["non_finite"] or 0 for r in ours.values())
    err = max(abs(r["relative_error"]) for r in ours.values())
    lines = ["vMF rsample, batch 1024 (m in 11/51/129 x kappa in 1..1e4):"]
    if worst:
        lines.append(
            f"  vs pythae: lowest ratio {ratios[worst]:.2f}x at m={worst[0]}, kappa={worst[1]:g} (target >= 1x); "
            f"m=11, kappa=1e4: {ratios.get((11, 10000.0), 0):.1f}x (target >= 10x)"
        )
    lines.append(
        f"  vae_lab non-finite samples: {bad}; worst |rel. error| of E[1 - mu.z]: {100 * err:.2f}% (target 2%)"
    )
    return lines


def by_round(results: dict[str, dict | None], name: str, *keys) -> list[float | None]:
    """``keys`` of ``name_r0``, ``name_r1``, ... in round order (None where a run failed)."""
    rounds = sorted((k for k in results if k.startswith(f"{name}_r")), key=lambda k: int(k.rsplit("_r", 1)[1]))
    return [dig(results[k], *keys) for k in rounds]


def median_and_range(values: list[float | None]) -> tuple[float | None, str]:
    values = [v for v in values if v]
    if not values:
        return None, "n/a"
    return statistics.median(values), f"{min(values):,.2f}-{max(values):,.2f}"


def _per_round_ratio(results: dict, name: str, reference: list[float | None], keys=("samples_per_s",)):
    ours = by_round(results, name, *keys)
    return median_and_range([o / r if o and r else None for o, r in zip(ours, reference, strict=False)])


def _train_lines(results: dict[str, dict | None]) -> list[str]:
    peer = by_round(results, "peer_vae", "vae", "trainer", "samples_per_s")
    floor = by_round(results, "floor", "samples_per_s")
    floor_eager = by_round(results, "floor_eager", "samples_per_s")
    if not any(by_round(results, "train_ours", "samples_per_s")):
        return []
    peer_bare = by_round(results, "peer_vae", "vae", "bare_loop", "samples_per_s")
    check = dig(results.get("floor_r0"), "check")
    lines = [
        f"Gaussian VAE (gated MLP 300, latent 40, batch 100, dynamic MNIST), training samples/s, "
        f"median of {len(peer)} interleaved rounds (ratios taken within each round, range after):",
        f"  pythae 0.1.2 trainer {median_and_range(peer)[0] or 0:,.0f} "
        f"(its bare loop {median_and_range(peer_bare)[0] or 0:,.0f})",
        f"  floor: plain-torch loop, compiled (bench/floor_torch.py) {median_and_range(floor)[0] or 0:,.0f}"
        + (f"; same loss/parameters as our step to {check['max_param_diff']:.0e}" if check else ""),
        f"  floor, eager (the same loop without torch.compile) {median_and_range(floor_eager)[0] or 0:,.0f}",
    ]
    for name in TRAIN_VARIANTS:
        ours = by_round(results, name, "samples_per_s")
        if not any(ours):
            continue
        vs_peer, peer_spread = _per_round_ratio(results, name, peer)
        vs_floor, floor_spread = _per_round_ratio(results, name, floor)
        options = " ".join(TRAIN_VARIANTS[name]) or "defaults"
        targets = ""
        if name == "train_ours":  # eager: also against the eager floor
            vs_eager, eager_spread = _per_round_ratio(results, name, floor_eager)
            eager = f", {vs_eager:.2f}x the eager floor ({eager_spread})" if vs_eager else ""
            targets = f"{eager} (targets >= 1.5x, >= 0.9x the floor)"
        lines.append(
            f"  vae_lab {options}: {median_and_range(ours)[0]:,.0f} -> {f'{vs_peer:.2f}x' if vs_peer else 'n/a'} "
            f"pythae ({peer_spread}), {f'{vs_floor:.2f}x' if vs_floor else 'n/a'} the floor ({floor_spread}){targets}"
        )
    paired = results.get("lightning_step_ratio")
    if paired:
        eager, compiled = paired["vs_eager_floor"], paired["vs_compiled_floor"]
        low, high = compiled["quartiles"]
        lines.append(
            f"  paired in one process (bench/lightning_step_ratio.py, {paired['rounds']} rounds of "
            f"{paired['steps_per_round']} steps): defaults through Lightning {paired['samples_per_s']:,.0f} = "
            f"{eager['median']:.2f}x the eager floor ({eager['quartiles'][0]:.2f}-{eager['quartiles'][1]:.2f}), "
            f"{compiled['median']:.2f}x the compiled floor ({low:.2f}-{high:.2f})"
        )
    return lines


def _eval_lines(data: dict | None) -> list[str]:
    lines = []
    for r in dig(data, "results", default=[]):
        lines.append(
            f"Test NLL, {r['case']} at S={r['samples']} (chunk {r['chunk']} x batch 100), points/s: "
            f"eager {r['eager_points_per_s']:.1f}, compiled (eval.compile=auto) {r['compiled_points_per_s']:.1f}; "
            f"its decoder matmuls alone allow {r['limit_points_per_s']:.1f} ({r['decoder_flops_per_sample'] / 1e6:.2f} "
            f"MFLOP/sample at {r['matmul_gflops_at_these_shapes']:.0f} GFLOP/s on {r.get('linear_backend', 'torch')}"
            + (
                f"; {r['torch_mm_limit_points_per_s']:.1f} at torch.mm's {r['torch_mm_gflops_at_these_shapes']:.0f}"
                if "torch_mm_limit_points_per_s" in r
                else ""
            )
            + ") -> "
            f"{r['compiled_fraction_of_limit']:.2f} of it (target >= 0.8); eager and compiled estimates differ by "
            f"<= {r['max_abs_difference_nats']:.1e} nats"
        )
    return lines


def _budget_lines(budget: dict | None) -> list[str]:
    if not budget:
        return []
    slowdown = budget["slowdown_vs_reference"]
    lines = [f"took {budget['elapsed_min']:.1f} min, {slowdown:.2f}x the reference machine's time (bench/budget.py)"]
    if budget["note"]:
        short, dropped = (", ".join(budget[key]) or "none" for key in ("shortened", "dropped"))
        lines += [f"shortened to fit the budget: {budget['note']}", f"  run short: {short}; dropped: {dropped}"]
    return lines


def summary(results: dict[str, dict | None]) -> list[str]:
    lines = _budget_lines(results.get("budget")) + _train_lines(results)
    fp32 = [r for r in dig(results.get("matmul_rate"), "results", default=[]) if r["dtype"] == "float32"]
    achieved = median_and_range(by_round(results, "train_ours", "achieved_gflops"))[0]
    best_step_rate = None
    for library in ("torch.matmul", "oneDNN"):
        matmul = [r for r in fp32 if r.get("library", "torch.matmul") == library]
        if not matmul:
            continue
        peak = max(r["gflops"] for r in matmul)
        # The step's own shapes: the batch-100 products of the gated MLP.
        step_rate = statistics.median([r["gflops"] for r in matmul if r["m"] == 100] or [0]) or None
        best_step_rate = max(best_step_rate or 0, step_rate or 0) or None
        lines.append(
            f"  fp32 matmul rate, {library}: {peak:.0f} GFLOP/s at best, {step_rate:.0f} at the step's batch-100 shapes"
        )
    if achieved and best_step_rate:
        lines.append(
            f"  the default step achieves {achieved:.1f} GFLOP/s of counted matmul work = "
            f"{100 * achieved / best_step_rate:.0f}% of the faster library's rate at its shapes"
        )
    lines += _eval_lines(results.get("eval_ours"))
    for r in dig(results.get("logsumexp_rate"), "results", default=[]):
        lines.append(
            f"log-sum-exp where most terms underflow, {r['case']}: torch {r['torch_ns_per_element']:.2f} ns/element, "
            f"vae_lab {r['ours_ns_per_element']:.2f} ({ratio(r['torch_ns_per_element'], r['ours_ns_per_element'])}), "
            f"{'identical' if r['equal'] else 'DIFFERENT'} results"
        )
    lines += _vamp_lines(results.get("vamp_ours"), results.get("peer_vamp"))
    lines += _vmf_lines(results.get("vmf_sampling"))
    text = results.get("text_lstm")
    if text:
        vae, bare = (
            dig(text, "tokens_per_s", "lstm_vae", default=0),
            dig(text, "tokens_per_s", "bare_lstm_lm", default=0),
        )
        blocks = dig(text, "ratio_by_block", default=[])
        paired = (
            f"{text['ratio_vae_to_bare']:.2f}x, median of {len(blocks)} blocks on the same batches "
            f"({min(blocks):.2f}-{max(blocks):.2f})"
            if blocks
            else ratio(vae, bare)
        )
        lines.append(f"PTB LSTM VAE tokens/s {vae:,.0f} vs bare LSTM LM {bare:,.0f}: {paired} (target >= 0.8x)")
    lines += _density_gap_lines(results.get("density_gap"))
    lines += _conv_lines(results.get("conv_train"))
    for name, run in dig(results.get("sweep_throughput"), "launchers", default={}).items():
        lines.append(f"4-job sweep, {name}: {run['wall_s']:.0f} s = {run['jobs_per_hour']:.0f} jobs/hour")
    return lines


def _conv_lines(conv: dict | None) -> list[str]:
    if not conv:
        return []
    rates = conv["machine_rates_gflops"]
    return [
        f"Fashion-MNIST training, batch 100, samples/s: conv VAE {conv['conv']['samples_per_s']:,.0f} "
        f"({conv['conv']['achieved_gflops']:.1f} GFLOP/s = {conv['conv_fraction_of_conv_rate']:.2f} of this machine's "
        f"3x3-conv rate {rates['conv3x3_100x32x28x28']:.0f}) vs MLP VAE {conv['mlp']['samples_per_s']:,.0f} "
        f"({conv['mlp']['achieved_gflops']:.1f} GFLOP/s = {conv['mlp_fraction_of_matmul_rate']:.2f} of its "
        f"100x512x512 matmul rate {rates['matmul_100x512x512']:.0f})"
    ]


def _density_gap_lines(dg: dict | None) -> list[str]:
    if not dg:
        return []
    rates, holes = dg["training_tokens_per_s"], dg["holes"]
    return [
        f"PTB dg_ptb step tokens/s: density gap {rates['density_gap']:,.0f} vs ELBO {rates['elbo']:,.0f}: "
        f"{ratio(rates['density_gap'], rates['elbo'])} (target >= 0.85x)",
        f"hole metrics, {holes['posteriors']} PTB test posteriors x {holes['prior_samples']:,} prior samples: "
        f"{holes['ours_s']:.1f} s (first call {holes['ours_first_call_s']:.1f} s) "
        f"vs the paper's loop {holes['paper_loop_s']:.1f} s = {holes['speedup']:.1f}x "
        f"(target >= 10x); joint KL(p||q_agg) {holes['ours_joint_kl']:.4f} vs {holes['paper_loop_joint_kl']:.4f} "
        f"(rel. diff {holes['joint_relative_difference']:.1e}), per-dimension max rel. diff "
        f"{holes['per_dim_max_relative_difference']:.1e} (max abs. diff "
        f"{holes.get('per_dim_max_absolute_difference', float('nan')):.1e} nats, smallest KL "
        f"{holes.get('per_dim_smallest_kl', float('nan')):.1e})",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=["train", "eval", "vamp", "vmf", "text", "dg", "conv", "sweep"])
    parser.add_argument("--quick", action="store_true", help="fewer timed steps")
    parser.add_argument("--summary-only", action="store_true", help="re-print the summary of bench/out/*.json")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds of the training comparison")
    parser.add_argument(
        "--budget", type=float, default=14, help="minutes: past this, the rest runs short (bench/budget.py); 0: none"
    )
    parser.add_argument("--since", type=float, help="the budget's start, seconds since the epoch (default: now)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: needs at least one round")
    OUT.mkdir(exist_ok=True)
    machine, native_bf16 = machine_line()
    print(machine)
    if not native_bf16:
        skipped = [n for n, o in TRAIN_VARIANTS.items() if any("bf16" in x for x in o)]
        skipped += ["vamp_ours bf16-mixed", "matmul_rate bf16"]
        print(f"skipped (no native bf16 on this CPU, they would time a slow fallback): {', '.join(skipped)}")
    print(f"load average at start: {os.getloadavg()} (ratios need a quiet machine)")
    if args.summary_only:  # every saved result, whatever rounds the last run had
        results = {f.stem: json.loads(f.read_text()) for f in sorted(OUT.glob("*.json")) if f.stem != "summary"}
    else:
        if not args.only or "train" in args.only:  # rounds left from a longer earlier run would mix in
            for stale in [*OUT.glob("train_ours*_r*.json"), *OUT.glob("peer_vae_r*.json"), *OUT.glob("floor*_r*.json")]:
                stale.unlink()
        full, short = (suites(quick, args.rounds, native_bf16) for quick in (False, True))
        quick_form = {name: command for jobs in short.values() for name, command in jobs}
        plan = [
            (name, command, quick_form[name])
            for suite, jobs in full.items()
            if not args.only or suite in args.only
            for name, command in jobs
        ]
        budget = Budget(args.budget * 60 if args.budget > 0 else None, quick=args.quick, start=args.since)
        results = run_within(budget, plan)
        results["budget"] = budget.summary()
    print("\n=== summary (details in bench/out/*.json)")
    for line in summary(results):
        print(line)
    if not args.summary_only:
        (OUT / "summary.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
