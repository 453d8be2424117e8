"""The defaults through the real Lightning loop against the floor, in one process, in paired rounds.

    python bench/lightning_step_ratio.py [--rounds 15] [--steps 100] [--out F] [hydra overrides ...]

`python -m vae_lab.train`'s own training loop (the default model and data, built by
``vae_lab.train.build``; validation, checkpoints and media off, as in ``bench/train_ours.py``) runs
with a callback that pauses it every ``--steps`` optimiser steps and runs the same number of steps
of ``bench/floor_torch.py``'s hand-written loop, eagerly and compiled (each with its batch draw and
binarisation, noise, loss, backward and fused AdamNormGrad, as ours has). Each round's ratio is the
floor's time over ours for the same number of steps; the median and quartiles are printed.
Separate processes timed one after the other cannot resolve this gap on a host whose speed drifts
by tens of per cent within minutes; in one process the drift cancels within each round.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
from floor_torch import FloorLoop  # sibling script (bench/ is on sys.path when run as a script)
from step_rates import save_result
from train_ours import training_only_config

from vae_lab.data.images import load_mnist_dynamic
from vae_lab.train import build

FLOORS = ("eager", "compiled")


class PairedRounds(L.Callback):
    """After ``warmup`` steps, every ``steps`` optimiser steps: time ours since the last pause, then
    the floors for as many steps (Lightning hands over groups of ``steps_per_call`` steps)."""

    def __init__(self, floors: dict[str, FloorLoop], steps: int, warmup: int):
        self.floors, self.steps, self.warmup = floors, steps, warmup
        self.mark: tuple[float, int] | None = None
        self.rounds: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, *args):
        step = trainer.global_step
        if step < self.warmup:
            return
        if self.mark is None or step - self.mark[1] >= self.steps:
            if self.mark is not None:
                done = step - self.mark[1]
                ours = time.perf_counter() - self.mark[0]
                self.rounds.append({"steps": done, "ours_s": ours} | {k: f.run(done) for k, f in self.floors.items()})
            self.mark = (time.perf_counter(), step)


def measure(overrides: list[str], rounds: int, steps: int, warmup: int) -> dict:
    train = load_mnist_dynamic(root=None).train
    floors = {name: FloorLoop(train, compiled=name == "compiled") for name in FLOORS}
    for loop in floors.values():
        loop.run(30)  # compiling, oneDNN primitives, allocator
    with tempfile.TemporaryDirectory() as tmp:
        cfg = training_only_config(overrides, warmup + rounds * steps, Path(tmp))
        datamodule, model, _, trainer = build(cfg)
        paired = PairedRounds(floors, steps, warmup)
        trainer.callbacks.append(paired)
        trainer.fit(model, datamodule=datamodule)
    batch = cfg.data.module.batch_size
    result = {"overrides": overrides, "rounds": len(paired.rounds), "steps_per_round": steps, "by_round": paired.rounds}
    result["samples_per_s"] = statistics.median(batch * r["steps"] / r["ours_s"] for r in paired.rounds)
    for name in FLOORS:
        ratios = [r[name] / r["ours_s"] for r in paired.rounds]
        low, _, high = statistics.quantiles(ratios, n=4)
        result[f"vs_{name}_floor"] = {"median": statistics.median(ratios), "quartiles": [low, high]}
        result[f"{name}_floor_samples_per_s"] = statistics.median(batch * r["steps"] / r[name] for r in paired.rounds)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=100, help="optimiser steps of each loop per round")
    parser.add_argument("--warmup-steps", type=int, default=50)
    parser.add_argument("--out", type=Path)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if args.rounds < 2 or args.steps < 1:
        parser.error(f"--rounds {args.rounds} --steps {args.steps}: need at least 2 rounds (quartiles) of >= 1 step")
    result = measure(args.overrides, args.rounds, args.steps, args.warmup_steps)
    ours = result["samples_per_s"]
    for name in FLOORS:
        ratio = result[f"vs_{name}_floor"]
        print(
            f"vae_lab {' '.join(args.overrides) or 'defaults'} through Lightning: {ours:,.0f} samples/s = "
            f"{ratio['median']:.3f}x the {name} floor's {result[f'{name}_floor_samples_per_s']:,.0f} "
            f"(quartiles {ratio['quartiles'][0]:.3f}-{ratio['quartiles'][1]:.3f}, {result['rounds']} paired rounds "
            f"of {args.steps} steps)"
        )
    save_result(result, args.out, echo=False)


if __name__ == "__main__":
    main()
