"""Samples/s from the end times of consecutive training steps, and writing a script's result,
shared by every bench script (ours and the peer's, which runs in its own environment and imports
only siblings like this one).

This VM's speed drifts over minutes, so besides the mean over the whole span each script reports
WINDOW-step windows: the best one is the rate least disturbed by other processes.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

WINDOW = 50  # steps per timing window


def rates(step_ends: list[float], batch: int) -> dict[str, float]:
    """``step_ends[0]`` is the end of the step before the first timed one."""
    steps = len(step_ends) - 1
    mean = steps * batch / (step_ends[-1] - step_ends[0])
    windows = [WINDOW * batch / (step_ends[i + WINDOW] - step_ends[i]) for i in range(0, steps - WINDOW + 1, WINDOW)]
    return {
        "steps": steps,
        "samples_per_s": mean,
        "best_window_samples_per_s": max(windows) if windows else mean,
        "median_window_samples_per_s": statistics.median(windows) if windows else mean,
    }


def save_result(result: dict, out: Path | None, echo: bool = True) -> None:
    """Print ``result`` as JSON (``echo``) and write it to ``out`` when given (what bench/run.py reads)."""
    text = json.dumps(result, indent=2)
    if echo:
        print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
