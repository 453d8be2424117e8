"""`make bench`: every benchmark in one run, one after the other, then the headline ratios.

Each measurement is a standalone script writing JSON under bench/out/; peers run in the
separate benchmark environment .venv-bench (bench/peer_env.sh), ours in .venv. Running them in
one go on the same machine state is what makes the ratios meaningful.

    python bench/run.py [--only train vamp vmf text] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
OURS = sys.executable
PEER = str(BENCH.parent / ".venv-bench" / "bin" / "python")


def suites(quick: bool) -> dict[str, list[tuple[str, list[str]]]]:
    steps = ["--steps", "100"] if quick else []
    return {
        "train": [
            ("matmul_rate", [OURS, "matmul_rate.py"]),
            ("train_ours", [OURS, "train_ours.py", *steps]),
            ("train_ours_bf16", [OURS, "train_ours.py", *steps, "trainer.precision=bf16-mixed"]),
            ("peer_vae", [PEER, "peer_pythae.py", "vae", *steps]),
        ],
        "vamp": [
            ("vamp_ours", [OURS, "vamp_ours.py", *steps]),
            ("peer_vamp", [PEER, "peer_pythae.py", "vamp", "nll", *steps]),
        ],
        "vmf": [("vmf_sampling", [PEER, "vmf_sampling.py"])],
        "text": [("text_lstm", [OURS, "text_lstm.py"])],
    }


def run(name: str, command: list[str]) -> dict | None:
    out = OUT / f"{name}.json"
    out.unlink(missing_ok=True)
    if command[0] == PEER and not Path(PEER).exists():
        print(f"[{name}] skipped: {PEER} missing (run bash bench/peer_env.sh)")
        return None
    print(f"\n=== {name}: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(command))}", flush=True)
    start = time.perf_counter()
    done = subprocess.run([*command, "--out", str(out)], cwd=BENCH, env={**os.environ, "PYTHONPATH": str(BENCH.parent)})
    print(f"[{name}] exit {done.returncode} after {time.perf_counter() - start:.0f} s", flush=True)
    return json.loads(out.read_text()) if out.exists() else None


def dig(data: dict | None, *keys, default=None):
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


def summary(results: dict[str, dict | None]) -> list[str]:
    lines = []
    peak = max(
        (r["gflops"] for r in dig(results.get("matmul_rate"), "results", default=[]) if r["dtype"] == "float32"),
        default=None,
    )
    ours = dig(results.get("train_ours"), "samples_per_s")
    if ours:
        bf16 = dig(results.get("train_ours_bf16"), "samples_per_s")
        peer = dig(results.get("peer_vae"), "vae", "trainer", "samples_per_s")
        peer_bare = dig(results.get("peer_vae"), "vae", "bare_loop", "samples_per_s")
        achieved = dig(results.get("train_ours"), "achieved_gflops")
        lines += [
            "Gaussian VAE (gated MLP 300, latent 40, batch 100, dynamic MNIST), training samples/s:",
            f"  vae_lab fp32 {ours:,.0f} | bf16-mixed {bf16 or 0:,.0f} | pythae trainer {peer or 0:,.0f} "
            f"| pythae bare loop {peer_bare or 0:,.0f}",
            f"  vae_lab / pythae trainer: {ratio(ours, peer)} (target >= 1.5x); bf16: {ratio(bf16, peer)}",
            f"  matmul peak fp32 {peak or 0:.0f} GFLOP/s; training step achieves {achieved or 0:.1f} GFLOP/s "
            f"= {100 * (achieved or 0) / (peak or float('inf')):.0f}% of it",
        ]
    for key, value in (results.get("vamp_ours") or {}).items():
        lines.append(f"VampPrior (ours) {key}: {value}") if not isinstance(value, (dict, list)) else None
    text = results.get("text_lstm")
    if text:
        lines.append(
            f"PTB LSTM VAE tokens/s {dig(text, 'tokens_per_s', 'lstm_vae', default=0):,.0f} vs bare LSTM LM "
            f"{dig(text, 'tokens_per_s', 'bare_lstm_lm', default=0):,.0f}: {dig(text, 'ratio_vae_to_bare', default=0):.2f}x "
            "(target >= 0.8x)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=["train", "vamp", "vmf", "text"])
    parser.add_argument("--quick", action="store_true", help="fewer timed steps")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    print(f"load average at start: {os.getloadavg()} (ratios need a quiet machine)")
    results = {}
    for suite, jobs in suites(args.quick).items():
        if args.only and suite not in args.only:
            continue
        for name, command in jobs:
            results[name] = run(name, command)
    print("\n=== summary (details in bench/out/*.json)")
    for line in summary(results):
        print(line)
    (OUT / "summary.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
