"""This machine's matmul rate (GFLOP/s), as the ceiling a training step is compared to.

Standalone (only torch) and importable: ``measure_matmul_gflops(m, k, n, dtype, onednn)``. fp32 is
measured twice: with ``torch.matmul`` (Intel MKL in torch's CPU build) and with oneDNN, torch's
other CPU matmul library (``vae_lab.linear`` uses it where it is faster: AMD CPUs).

    python bench/matmul_rate.py --out bench/out/matmul_rate.json

Sizes: the gated-MLP layers of the benchmarked models at batch 100 (100x784x300, 100x300x300,
100x300x784), the VampPrior's pseudo-input pass (500x784x300) and a large square (2048^3) that
shows the peak. Each figure is the best of several repeats (the machine is shared and noisy; the
best run is the one least disturbed), using all of torch's threads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

SIZES = [(100, 784, 300), (100, 300, 300), (100, 300, 784), (500, 784, 300), (2048, 2048, 2048)]


def measure_matmul_gflops(
    m: int,
    k: int,
    n: int,
    dtype: torch.dtype = torch.float32,
    onednn: bool = False,
    repeats: int = 7,
    min_time: float = 0.05,
) -> float:
    """Best-of-``repeats`` rate of ``(m, k) @ (k, n)`` in GFLOP/s (2·m·k·n FLOPs per product).

    Each repeat runs enough back-to-back products to last at least ``min_time`` seconds, so
    small sizes are not dominated by timer resolution. ``onednn``: the product as oneDNN's linear
    layer (the weight stored (n, k), as a layer's is) instead of ``torch.matmul``.
    """
    a = torch.randn(m, k, dtype=dtype)
    b = torch.randn(k, n, dtype=dtype)
    out = torch.empty(m, n, dtype=dtype)
    if onednn:
        weight = b.t().contiguous()

        def product():
            return torch.ops.mkldnn._linear_pointwise(a, weight, None, "none", [], "")
    else:

        def product():
            return torch.matmul(a, b, out=out)

    product()  # warm-up: first call picks kernels and allocates workspace
    reps = 1
    while True:  # calibrate the inner count to min_time
        t0 = time.perf_counter()
        for _ in range(reps):
            product()
        if time.perf_counter() - t0 >= min_time:
            break
        reps *= 2
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(reps):
            product()
        best = min(best, (time.perf_counter() - t0) / reps)
    return 2.0 * m * k * n / best / 1e9


def bf16_supported() -> bool:
    """True when a bf16 CPU matmul runs at all (it may still be emulated, i.e. slow)."""
    try:
        torch.matmul(torch.ones(8, 8, dtype=torch.bfloat16), torch.ones(8, 8, dtype=torch.bfloat16))
        return True
    except RuntimeError:
        return False


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the results as JSON to this file")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice, all cores)")
    parser.add_argument("--no-bf16", action="store_true", help="skip the bf16 measurements")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    kinds = [(torch.float32, False)]
    if torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        kinds.append((torch.float32, True))
    if not args.no_bf16 and bf16_supported():
        kinds.append((torch.bfloat16, False))

    rows = []
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_model()}, load {load:.1f}")
    print(f"{'m x k x n':>18s} {'dtype':>9s} {'library':>13s} {'GFLOP/s':>9s}")
    for dtype, onednn in kinds:
        library = "oneDNN" if onednn else "torch.matmul"
        for m, k, n in SIZES:
            gflops = measure_matmul_gflops(m, k, n, dtype, onednn, repeats=args.repeats)
            name = str(dtype).removeprefix("torch.")
            rows.append({"m": m, "k": k, "n": n, "dtype": name, "library": library, "gflops": gflops})
            print(f"{f'{m}x{k}x{n}':>18s} {name:>9s} {library:>13s} {gflops:9.1f}")

    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        result = {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu": cpu_model(),
            "loadavg": os.getloadavg(),
            "repeats": args.repeats,
            "results": rows,
        }
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
