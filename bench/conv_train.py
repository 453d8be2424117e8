"""Training samples/s of the conv VAE next to the MLP VAE, on the same data, through the real loop.

    python bench/conv_train.py [--steps 100] [--out F]

Both are Dai, Wang & Wipf's depth-experiment models at their defaults: experiment=collapse_depth
(ReLU MLPs of 512, depth 2) and experiment=collapse_depth_conv (32-channel 3×3 convs, one per
scale, two scales), Fashion-MNIST as continuous data, Gaussian likelihood with learned γ, batch
100. Each step's FLOPs are counted by torch's FLOP counter (forward and backward, convolutions
and matmuls), so the achieved GFLOP/s can be set against this machine's own rates at the nets'
shapes: a 3×3 convolution of 100 × 32 × 28 × 28 images and a 100 × 512 × 512 matmul.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from matmul_rate import measure_matmul_gflops
from step_rates import save_result
from torch.utils.flop_counter import FlopCounterMode
from train_ours import measure

from vae_lab.capability import ONEDNN, fast_fp32_linear_backend
from vae_lab.config import compose_train_config
from vae_lab.linear import set_linear_backend
from vae_lab.train import build

VARIANTS = {"mlp": ["experiment=collapse_depth"], "conv": ["experiment=collapse_depth_conv"]}


def flops_per_example(overrides: list[str]) -> float:
    """Forward + backward FLOPs of one training step of the configured model, per example."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_train_config([*overrides, "logger=[]"], Path(tmp))
        datamodule, model, _, _ = build(cfg)
    datamodule.setup()
    x = datamodule.splits.train[: cfg.data.module.batch_size]
    # Counted on torch's own kernels: the counter knows aten's matmuls, not oneDNN's linear op
    # (same products, same FLOPs).
    set_linear_backend("torch")
    try:
        with FlopCounterMode(display=False) as counter:
            model.training_loss(x, 1.0)[0].backward()
    finally:
        set_linear_backend(cfg.linear_backend)
    return counter.get_total_flops() / len(x)


def conv_gflops(batch: int = 100, channels: int = 32, size: int = 28, repeats: int = 5) -> float:
    """Best-of-``repeats`` forward rate of a 3×3 same-padding convolution at the conv net's shape."""
    x = torch.randn(batch, channels, size, size)
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1)
    flops = 2 * batch * channels * channels * 9 * size * size
    with torch.no_grad():
        conv(x)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(10):
                conv(x)
            best = min(best, (time.perf_counter() - start) / 10)
    return flops / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup-steps", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = {
        "machine_rates_gflops": {
            "conv3x3_100x32x28x28": conv_gflops(),
            # with the library the MLP's layers use (linear_backend=auto)
            "matmul_100x512x512": measure_matmul_gflops(100, 512, 512, onednn=fast_fp32_linear_backend() == ONEDNN),
        },
        "threads": torch.get_num_threads(),
    }
    for name, overrides in VARIANTS.items():
        run = measure(overrides, args.steps, args.warmup_steps)
        flops = flops_per_example(overrides)
        run |= {"gflop_per_example": flops / 1e9, "achieved_gflops": run["samples_per_s"] * flops / 1e9}
        result[name] = run
    rates = result["machine_rates_gflops"]
    result["conv_fraction_of_conv_rate"] = result["conv"]["achieved_gflops"] / rates["conv3x3_100x32x28x28"]
    result["mlp_fraction_of_matmul_rate"] = result["mlp"]["achieved_gflops"] / rates["matmul_100x512x512"]
    save_result(result, args.out)


if __name__ == "__main__":
    main()
