"""β schedules: how the regulariser's weight moves during training.

- ``constant``: β throughout.
- ``linear``: β · min(1, epoch / warmup), epochs counted from 1 as in the VampPrior code
  (``warmup = 0``: β throughout). Bowman et al.'s KL annealing.
- ``cyclic``: Fu et al. (2019) cyclical annealing, counted in optimiser steps: training is cut
  into ``cycles`` equal periods; in each, β rises linearly from 0 to its maximum over the first
  ``ratio`` of the period and stays there for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEDULES = ("constant", "linear", "cyclic")


@dataclass
class BetaSchedule:
    kind: str = "linear"
    beta: float = 1.0
    warmup: int = 0  # linear: epochs of warm-up
    cycles: int = 4  # cyclic: number of periods
    ratio: float = 0.5  # cyclic: share of each period spent rising

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ValueError(f"objective.schedule={self.kind!r}: expected one of {', '.join(SCHEDULES)}")
        if not isinstance(self.warmup, int) or isinstance(self.warmup, bool) or self.warmup < 0:
            raise ValueError(f"objective.warmup={self.warmup!r}: the β warm-up length must be an integer >= 0 epochs")
        if not (isinstance(self.beta, int | float) and self.beta >= 0):
            raise ValueError(f"objective.beta={self.beta!r}: must be a number >= 0")
        if not isinstance(self.cycles, int) or self.cycles < 1:
            raise ValueError(f"objective.cycles={self.cycles!r}: must be a positive integer")
        if not 0 < self.ratio <= 1:
            raise ValueError(f"objective.ratio={self.ratio!r}: the rising share of a cycle must be in (0, 1]")

    def __call__(self, step: int, epoch: int, total_steps: int | None = None) -> float:
        if self.kind == "constant" or (self.kind == "linear" and self.warmup == 0):
            return self.beta
        if self.kind == "linear":
            return self.beta * min(1.0, (epoch + 1) / self.warmup)
        if not total_steps:
            raise ValueError("objective.schedule=cyclic needs the run's length: set trainer.max_steps or max_epochs")
        period = total_steps / self.cycles
        position = (step % period) / period  # in [0, 1) within the current cycle
        return self.beta * min(1.0, position / self.ratio)
