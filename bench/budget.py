"""`make bench`'s time budget: on a slower machine the heavy items shrink instead of overrunning it.

The full plan was sized on a 2-vCPU AMD EPYC (Zen 5, AVX-512), where it takes about 11 minutes;
an older AVX2-only processor can be much slower (issue 14's multiplied fp32 at about half this
one's rate at the training step's shapes). Before each item, the time the finished items
took here, against what they took on that reference machine, projects the rest of the plan. Once
the projection passes the budget, the remaining items run in their ``--quick`` form (fewer steps,
rounds and samples) and the training rounds not yet begun after the first two are dropped. The
run says so when it happens, and the summary lists what was shortened.
"""

from __future__ import annotations

import re
import time

# Seconds each item took on the reference machine, (full, --quick): `make bench` and
# `bench/run.py --quick` alone on a 2-vCPU AMD EPYC (Zen 5, AVX-512 with bf16), 2026-12-04.
# Training items are per round. Only ratios of these matter: they scale to this machine's speed.
REFERENCE_S = {
    "matmul_rate": (11, 10),
    "train_ours": (7, 6),
    "peer_vae": (10, 8),
    "floor": (8, 7),
    "floor_eager": (6, 5),
    "train_ours_compile": (9, 8),
    "train_ours_torch_linear": (8, 6),
    "train_ours_bf16_compile": (9, 8),
    "lightning_step_ratio": (27, 17),
    "eval_ours": (40, 31),
    "logsumexp_rate": (4, 3),
    "vamp_ours": (21, 14),
    "peer_vamp": (44, 19),
    "vmf_sampling": (30, 24),
    "text_lstm": (41, 19),
    "density_gap": (151, 29),
    "conv_train": (17, 14),
    "sweep_throughput": (64, 52),
}
MIN_ROUNDS = 2  # the training comparison keeps at least two interleaved rounds
# The slowdown is judged on at least this many reference seconds of finished items (the first
# one alone can catch the host in a slow minute); before that only an overrun at the reference
# machine's own speed shortens the plan.
MIN_EVIDENCE_S = 30
_ROUND = re.compile(r"^(?P<item>.+)_r(?P<round>\d+)$")


def item_and_round(name: str) -> tuple[str, int | None]:
    """``train_ours_r3`` -> (``train_ours``, 3); ``eval_ours`` -> (``eval_ours``, None)."""
    match = _ROUND.match(name)
    return (match["item"], int(match["round"])) if match else (name, None)


def reference_seconds(name: str, quick: bool) -> float:
    full, short = REFERENCE_S.get(item_and_round(name)[0], (0, 0))
    return short if quick else full


class Budget:
    """Decides, item by item, whether the rest of the plan still fits in ``limit_s`` at full length."""

    def __init__(self, limit_s: float | None, quick: bool = False, start: float | None = None, clock=time.time):
        """``start``: when the budget began, on ``clock`` (default: now; `make bench` passes the time
        before it set up the peer environment, which the budget then includes)."""
        self.limit_s = limit_s
        self.clock = clock
        self.start = clock() if start is None else start
        self.seconds_here = 0.0  # the finished items' time on this machine
        self.seconds_there = 0.0  # and on the reference machine
        self.quick = quick  # --quick asked for: every item short from the start
        self.over = False  # the budget made the rest short
        self.note: str | None = None
        self.shortened: list[str] = []  # items run short because of the budget
        self.dropped: list[str] = []  # training items of rounds not begun when it did
        self._rounds_begun: set[int] = set()

    def slowdown(self) -> float:
        """This machine's time for the finished items over the reference machine's (1 before any)."""
        return self.seconds_here / self.seconds_there if self.seconds_there else 1.0

    def elapsed(self) -> float:
        return self.clock() - self.start

    def plan(self, name: str, remaining: list[str]) -> str | None:
        """Before item ``name`` (``remaining``: it and those after it): ``"full"``, ``"quick"``, or
        None to drop it (a training round not begun once the budget has shortened the run)."""
        if not self.over and self.limit_s is not None:
            rest = sum(reference_seconds(n, self.quick) for n in remaining)
            slowdown = self.slowdown() if self.seconds_there >= MIN_EVIDENCE_S else 1.0
            projected = self.elapsed() + slowdown * rest
            if projected > self.limit_s:
                self.over = True
                rounds_left = any(item_and_round(n)[1] is not None for n in remaining)
                self.note = (
                    f"after {self.elapsed() / 60:.1f} min at {slowdown:.2f}x the reference machine's time, "
                    f"the plan would end at {projected / 60:.1f} min (budget {self.limit_s / 60:.3g} min): "
                    + ("the rest runs in its --quick form" if not self.quick else "already --quick")
                    + (f", with at most {MIN_ROUNDS} training rounds" if rounds_left else "")
                )
                print(f"\n[budget] {self.note}", flush=True)
        _, round_index = item_and_round(name)
        if round_index is not None:
            if self.over and round_index >= MIN_ROUNDS and round_index not in self._rounds_begun:
                self.dropped.append(name)
                return None
            self._rounds_begun.add(round_index)
        if self.over and not self.quick:
            self.shortened.append(name)
        return "quick" if self.quick or self.over else "full"

    def record(self, name: str, seconds: float, quick: bool) -> None:
        if reference_seconds(name, quick):
            self.seconds_here += seconds
            self.seconds_there += reference_seconds(name, quick)

    def summary(self) -> dict:
        return {
            "limit_min": None if self.limit_s is None else self.limit_s / 60,
            "elapsed_min": self.elapsed() / 60,
            "slowdown_vs_reference": self.slowdown(),
            "note": self.note,
            "shortened": self.shortened,
            "dropped": self.dropped,
        }
