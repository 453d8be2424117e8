"""vae_lab's training step against the eager floor's, in one process, in alternating rounds.

    python bench/bare_step_ratio.py [--rounds 30] [--steps 50] [fwd fb all]

Both loops run without Lightning on the same pre-drawn binarised batches: vae_lab's
``VAEModule.training_loss`` + ``AdamNormGrad`` (the default model, from the real config), and the
hand-written loop of ``bench/floor_torch.py`` run eagerly. Rounds of ``--steps`` steps alternate
between the two, so the host's drifting speed (±30 % over minutes) cancels in each round's ratio;
the median and quartiles of the per-round ratios are printed, and the extra time per step.
Parts: ``fwd`` the loss alone, ``fb`` loss + backward, ``all`` the whole step with the optimiser.
A ratio below 1 is what our step's structure (modules, distribution objects, the objective seam)
costs beyond the same arithmetic written out by hand.
"""

from __future__ import annotations

import argparse
import statistics
import time

import floor_torch as floor  # sibling script (bench/ is on sys.path when run as a script)
import torch

from vae_lab.data.images import load_mnist_dynamic
from vae_lab.linear import set_linear_backend
from vae_lab.optim import AdamNormGrad

PARTS = ("fwd", "fb", "all")


def steppers(batches: list[torch.Tensor], floor_first: bool):
    if floor_first:
        floor_params = floor.weights_of(floor.vae_lab_model())
        floor_optimizer = floor.NormGradAdam(floor_params)
    ours_model = floor.vae_lab_model()
    ours_optimizer = AdamNormGrad(ours_model.parameters(), lr=floor.LR, fused=True)
    if not floor_first:
        floor_params = floor.weights_of(floor.vae_lab_model())
        floor_optimizer = floor.NormGradAdam(floor_params)
    beta = torch.tensor(1.0)

    def ours(i: int, part: str) -> None:
        loss, _, _, _ = ours_model.training_loss(batches[i % len(batches)], 1.0)
        if part != "fwd":
            ours_optimizer.zero_grad()
            loss.backward()
            if part == "all":
                ours_optimizer.step()

    def hand_written(i: int, part: str) -> None:
        eps = torch.randn(floor.BATCH, ours_model.latent.latent_dim)
        loss = floor.loss_fn(floor_params, batches[i % len(batches)], eps, beta)
        if part != "fwd":
            floor_optimizer.zero_grad()
            loss.backward()
            if part == "all":
                floor_optimizer.step()

    return ours, hand_written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=50, help="steps of each loop per round")
    parser.add_argument("--floor-first", action="store_true", help="build the floor's tensors before ours")
    parser.add_argument("parts", nargs="*", metavar="{fwd,fb,all}", help="parts to time (default: all)")
    args = parser.parse_args()
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:  # checked here: argparse rejects a list default against `choices` for nargs="*"
        parser.error(f"unknown part(s) {unknown}; choose from {list(PARTS)}")
    args.parts = args.parts or ["all"]
    set_linear_backend("auto")
    train = load_mnist_dynamic(root=None).train
    batches = [x for _, x in zip(range(64), floor.binarised_batches(train), strict=False)]
    ours, hand_written = steppers(batches, args.floor_first)
    for i in range(100):  # warm-up: allocator, oneDNN primitives
        ours(i, "all")
        hand_written(i, "all")
    for part in args.parts:
        ratios, extra_us = [], []
        for _ in range(args.rounds):
            seconds = []
            for step in (ours, hand_written):
                start = time.perf_counter()
                for i in range(args.steps):
                    step(i, part)
                seconds.append(time.perf_counter() - start)
            ratios.append(seconds[1] / seconds[0])
            extra_us.append((seconds[0] - seconds[1]) / args.steps * 1e6)
        low, _, high = statistics.quantiles(ratios, n=4)
        print(
            f"{part}: vae_lab's step runs at {statistics.median(ratios):.3f}x the eager floor's speed "
            f"(quartiles {low:.3f}-{high:.3f} over {args.rounds} rounds of {args.steps} steps); "
            f"extra time {statistics.median(extra_us):.0f} us/step"
        )


if __name__ == "__main__":
    main()
