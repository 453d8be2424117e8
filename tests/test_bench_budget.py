"""bench/budget.py: `make bench` shortens the rest of its plan only when it would overrun its budget."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from budget import REFERENCE_S, Budget, reference_seconds  # noqa: E402

TRAIN = ["train_ours", "peer_vae", "floor"]
PLAN = ["matmul_rate", *[f"{item}_r{r}" for r in range(4) for item in TRAIN], "eval_ours", "density_gap"]


def simulate(slowdown, limit_s: float | None, quick: bool = False) -> tuple[Budget, dict[str, str]]:
    """Walk the plan on a fake clock where every item takes ``slowdown`` (a number, or a function
    of the item's name) x its reference time."""
    now = [0.0]
    budget = Budget(limit_s, quick=quick, clock=lambda: now[0])
    forms = {}
    for i, name in enumerate(PLAN):
        form = budget.plan(name, PLAN[i:])
        if form is None:
            continue
        forms[name] = form
        factor = slowdown(name) if callable(slowdown) else slowdown
        seconds = factor * reference_seconds(name, quick=form == "quick")
        now[0] += seconds
        budget.record(name, seconds, quick=form == "quick")
    return budget, forms


def test_every_plan_item_has_reference_times():
    assert all(reference_seconds(name, quick) > 0 for name in PLAN for quick in (False, True))
    assert all(quick <= full for full, quick in REFERENCE_S.values())


def test_a_machine_like_the_reference_runs_the_whole_plan_in_full():
    total = sum(reference_seconds(name, quick=False) for name in PLAN)
    budget, forms = simulate(1.0, limit_s=total * 1.2)
    assert set(forms) == set(PLAN) and set(forms.values()) == {"full"}
    assert budget.note is None and not budget.dropped and budget.slowdown() == 1.0


def test_a_slower_machine_shortens_the_rest_and_keeps_two_training_rounds():
    total = sum(reference_seconds(name, quick=False) for name in PLAN)
    budget, forms = simulate(2.0, limit_s=total * 1.2)
    assert budget.note is not None and budget.slowdown() == 2.0
    assert forms["matmul_rate"] == "full" and forms["density_gap"] == "quick"
    # Rounds 0 and 1 complete (whatever form); rounds 2 and 3 are dropped whole, never half-run.
    assert {f"{item}_r{r}" for r in (0, 1) for item in TRAIN} <= set(forms)
    assert budget.dropped == [f"{item}_r{r}" for r in (2, 3) for item in TRAIN]
    assert budget.shortened == [name for name in forms if forms[name] == "quick"]
    # The switch came as soon as the projection passed the budget, so the run ends within it.
    assert budget.elapsed() <= total * 1.2


def test_one_slow_first_item_is_not_enough_evidence_to_shorten():
    total = sum(reference_seconds(name, quick=False) for name in PLAN)
    _, forms = simulate(lambda name: 3.0 if name == "matmul_rate" else 1.0, limit_s=total * 1.2)
    assert forms["matmul_rate"] == forms["train_ours_r0"] == "full"


def test_no_budget_never_shortens_and_quick_alone_drops_nothing():
    assert set(simulate(3.0, limit_s=None)[1].values()) == {"full"}
    budget, forms = simulate(1.0, limit_s=None, quick=True)
    assert set(forms) == set(PLAN) and set(forms.values()) == {"quick"} and not budget.shortened
