"""Importance-sampled evaluation against its matmul limit: points/s of vae_lab's test NLL.

    python bench/eval_ours.py [--points 100] [--out F] [--case gauss|vamp ...]

Times ``VAEModule.log_likelihood`` (what the final test runs for each batch) on real test points,
after ``--train-steps`` training steps (300; untrained weights spare the log-sum-exps their real cost):
the default Gaussian VAE (dynamic MNIST) at S = 5000 and the VampPrior (static MNIST, K = 500) at
S = 500, with the default chunking, eagerly and with the decoder and prior pass compiled (``eval.compile``),
in interleaved rounds (medians).
Beside it, in the same rounds, the limit its matmuls alone allow: each decoder Linear layer's
product at the evaluation's own shapes (rows = chunk × batch), as many times as the evaluation
runs it, with the library the layers use (``linear_backend``: oneDNN on AMD CPUs, torch's default
elsewhere), and for reference with ``torch.mm`` (torch's default, Intel MKL). The ratio (taken
within each round) is the fraction of the first limit the evaluation reaches. Both runs
must give the same estimate (printed: the largest per-point difference in nats).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from step_rates import save_result  # sibling script (bench/ is on sys.path when run as a script)

from vae_lab.config import compose_train_config
from vae_lab.data.datamodule import dynamic_binarisation
from vae_lab.linear import linear, linear_backend, set_linear_backend

CASES = {
    "gauss": {"overrides": [], "samples": 5000},
    "vamp": {"overrides": ["data=mnist_static", "prior=vamp"], "samples": 500},
}


def decoder_linears(model) -> list[torch.nn.Linear]:
    return [m for part in (model.decoder, model.likelihood) for m in part.modules() if isinstance(m, torch.nn.Linear)]


def decoder_shapes(model) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in decoder_linears(model)]


def time_matmuls_only(model, rows: int, samples: int, points: int, batch: int, torch_mm: bool = False) -> float:
    """Points/s if the decoder's matmuls were all the evaluation did: each decoder layer's product
    at the evaluation's shapes (``rows`` = chunk × batch), as many times as the evaluation of
    ``points`` points at S = ``samples`` runs it; with the layers' own ``linear`` (its backend), or
    as a plain ``torch.mm``."""
    operands = [(torch.randn(rows, k), torch.randn(n, k), torch.empty(rows, n)) for k, n in decoder_shapes(model)]
    chunks = -(-samples * batch // rows) * -(-points // batch)
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(chunks):
            for a, w, out in operands:
                if torch_mm:
                    torch.mm(a, w.t(), out=out)
                else:
                    linear(a, w)
    return points / (time.perf_counter() - start)


def time_evaluation(model, x: torch.Tensor, samples: int, compile: bool, batch: int) -> tuple[float, torch.Tensor]:
    """Points/s of the test NLL over ``x`` in batches, and the per-point estimates (same seed each time)."""
    model.set_evaluation(0, samples, model.iw_chunk_size, 0, compile)
    with torch.inference_mode():  # as the test loop runs it (Lightning's default)
        torch.manual_seed(1)
        start = time.perf_counter()
        values = [model.log_likelihood(b, model.posterior(b), samples) for b in x.split(batch)]
        return len(x) / (time.perf_counter() - start), torch.cat(values)


def interleaved(model, x: torch.Tensor, samples: int, batch: int, rounds: int) -> dict[bool, list[float]]:
    """Eager and compiled, alternating: this VM's speed drifts, so only same-round figures compare."""
    for compile in (False, True):  # warm-up, and compiling
        time_evaluation(model, x[:batch], samples, compile, batch)
    rates = {False: [], True: [], "matmuls": [], "torch_mm": []}
    rows = model.iw_chunk_size * batch
    for _ in range(rounds):
        for compile in (False, True):
            rate, estimate = time_evaluation(model, x, samples, compile, batch)
            rates[compile].append(rate)
            rates[f"estimate_{compile}"] = estimate
        rates["matmuls"].append(time_matmuls_only(model, rows, samples, len(x), batch))
        rates["torch_mm"].append(time_matmuls_only(model, rows, samples, len(x), batch, torch_mm=True))
    return rates


def briefly_train(model, train: torch.Tensor, steps: int, batch: int) -> None:
    """A few hundred optimiser steps on (re-binarised) training batches: at initialisation the
    posteriors overlap, while a trained model's log-weights and mixture terms span hundreds of nats,
    the regime the real test meets (many exp terms underflow; vae_lab/distributions/logsumexp.py)."""
    optimizer = model.configure_optimizers()
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        x = train[torch.randint(len(train), (batch,), generator=generator)]
        x = dynamic_binarisation(x, generator)
        loss = model.training_loss(x, 1.0)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def measure(case: str, points: int, rounds: int, chunk: int | None, train_steps: int) -> dict:
    spec = CASES[case]
    chunk_override = [f"eval.iw_chunk_size={chunk}"] if chunk else []
    cfg = compose_train_config(["logger=[]", *spec["overrides"], *chunk_override])
    set_linear_backend(cfg.linear_backend)  # as vae_lab.train and vae_lab.evaluate do
    torch.manual_seed(0)
    datamodule, model = instantiate(cfg.data.module), instantiate(cfg.model)
    datamodule.setup("test")
    briefly_train(model, datamodule.splits.train, train_steps, cfg.data.module.batch_size)
    batch = cfg.data.module.eval_batch_size
    if points % batch:
        raise SystemExit(
            f"--points {points}: use a multiple of the evaluation batch ({batch}), as the matmul limit assumes"
        )
    x = datamodule.splits.test[:points]
    samples = spec["samples"]
    rates = interleaved(model, x, samples, batch, rounds)
    eager, compiled, limit, limit_mm = (statistics.median(rates[key]) for key in (False, True, "matmuls", "torch_mm"))
    ll_eager, ll_compiled = rates["estimate_False"], rates["estimate_True"]
    flops = sum(2 * k * n for k, n in decoder_shapes(model))
    result = {
        "case": case,
        "overrides": spec["overrides"],
        "samples": samples,
        "points": points,
        "trained_steps": train_steps,
        "chunk": model.iw_chunk_size,
        "rounds": rounds,
        "eager_points_per_s": eager,
        "compiled_points_per_s": compiled,
        "linear_backend": linear_backend(),
        "limit_points_per_s": limit,
        "torch_mm_limit_points_per_s": limit_mm,
        "eager_points_per_s_by_round": rates[False],
        "compiled_points_per_s_by_round": rates[True],
        "limit_points_per_s_by_round": rates["matmuls"],
        "decoder_flops_per_sample": flops,
        "matmul_gflops_at_these_shapes": limit * samples * flops / 1e9,
        "torch_mm_gflops_at_these_shapes": limit_mm * samples * flops / 1e9,
        "max_abs_difference_nats": (ll_eager - ll_compiled).abs().max().item(),
        "mean_log_likelihood": ll_eager.mean().item(),
    }
    # Fractions within each round (the machine's speed drifts between rounds), then the median.
    for name, key in (("eager", False), ("compiled", True)):
        fractions = [r / m for r, m in zip(rates[key], rates["matmuls"], strict=True)]
        result[f"{name}_fraction_of_limit"] = statistics.median(fractions)
    print(
        f"{case}: S={samples}, chunk {model.iw_chunk_size} x batch {batch}: eager {eager:.1f}, compiled {compiled:.1f} "
        f"points/s; matmul limit ({linear_backend()}) {limit:.1f} points/s "
        f"({result['matmul_gflops_at_these_shapes']:.0f} GFLOP/s; torch.mm {limit_mm:.1f}) -> "
        f"{result['eager_fraction_of_limit']:.2f} / "
        f"{result['compiled_fraction_of_limit']:.2f} of it; estimates differ by <= "
        f"{result['max_abs_difference_nats']:.1e} nats",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--case", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunk", type=int, help="eval.iw_chunk_size (default: the config's)")
    parser.add_argument("--train-steps", type=int, default=300, help="training steps before timing")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = [measure(case, args.points, args.rounds, args.chunk, args.train_steps) for case in args.case]
    result = {"results": results, "threads": torch.get_num_threads()}
    save_result(result, args.out, echo=False)  # its lines above are the readable summary


if __name__ == "__main__":
    main()
