"""torch.logsumexp against vae_lab.distributions.logsumexp where most terms underflow, ns per element.

    python bench/logsumexp_rate.py [--out F]

Rows of log-densities spread over hundreds of nats (N(-100, 30²)), the regime of a trained model's
mixture priors and aggregate posteriors: torch's eager CPU exp leaves its fast path for arguments
whose results underflow, vae_lab.distributions.logsumexp clamps them (same values: checked here).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from step_rates import save_result  # sibling script (bench/ is on sys.path when run as a script)

from vae_lab.distributions.logsumexp import logsumexp

SHAPES = {"hole metrics (838 x 10000)": (838, 10_000), "VampPrior prior (3200 x 500)": (3200, 500)}


def ns_per_element(fn, x: torch.Tensor, repeats: int = 20) -> float:
    fn(x)
    start = time.perf_counter()
    for _ in range(repeats):
        fn(x)
    return (time.perf_counter() - start) / repeats / x.numel() * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = []
    for name, shape in SHAPES.items():
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0)) * 30 - 100
        same = torch.equal(logsumexp(x, 1), torch.logsumexp(x, 1))
        torch_ns = ns_per_element(lambda t: torch.logsumexp(t, 1), x)
        ours_ns = ns_per_element(lambda t: logsumexp(t, 1), x)
        rows.append({"case": name, "torch_ns_per_element": torch_ns, "ours_ns_per_element": ours_ns, "equal": same})
        print(f"{name}: torch.logsumexp {torch_ns:.2f} ns/element, vae_lab {ours_ns:.2f} "
              f"({torch_ns / ours_ns:.1f}x), results {'identical' if same else 'DIFFERENT'}")  # fmt: skip
    save_result({"results": rows, "threads": torch.get_num_threads()}, args.out, echo=False)


if __name__ == "__main__":
    main()
