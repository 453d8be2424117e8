"""Shared test helpers: the data root, Hydra composition, and running the real CLI."""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from vae_lab.config import compose_with_hydra, task_config

REPO = Path(__file__).resolve().parents[1]
# Runs whose test does not look at the figures skip drawing them (seconds of matplotlib per run);
# the end-to-end, density-gap and autoencoder tests keep them and check them.
NO_FIGURES = ["~callbacks.latent_space", "~callbacks.collapse_figures", "~callbacks.report_figures"]


def data_root() -> Path | None:
    root = os.environ.get("VAE_LAB_DATA") or (REPO.parent / "shared" / "data")
    root = Path(root)
    return root if (root / "mnist" / "train-images-idx3-ubyte.gz").exists() else None


needs_real_data = pytest.mark.skipif(
    data_root() is None, reason="real datasets not found (set VAE_LAB_DATA or place ../shared/data)"
)


@functools.cache
def _composed(overrides: tuple[str, ...]):
    return compose_with_hydra(list(overrides))


def compose_config(overrides: list[str], output_dir: Path):
    """The config `python -m vae_lab.train <overrides>` would run, on the test data root.
    Composed once per test session and set of overrides; each call gets its own copy."""
    cfg = task_config(copy.deepcopy(_composed(tuple(overrides))), output_dir)
    if data_root() is not None:
        with open_dict(cfg):
            cfg.data.root = str(data_root())
    return cfg


def run_cli(args: list[str], cwd: Path, timeout: float = 600, check: bool = True, module: str = "vae_lab.train"):
    """Run `python -m vae_lab.train <args>` in a subprocess, as a user would."""
    # PYTHONPATH: the runs may load test-only callbacks (tests/killer.py) through +callbacks.*
    env = {**os.environ, "WANDB_MODE": "offline", "VAE_LAB_NO_DOWNLOAD": "1", "PYTHONPATH": str(REPO)}
    if data_root() is not None:
        env["VAE_LAB_DATA"] = str(data_root())
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"CLI failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def cli_in_process(args: list[str], cwd: Path, monkeypatch, capsys) -> tuple[int, str]:
    """`python -m vae_lab.train <args>` through the CLI's own entry function, in this process:
    the exit code and what it printed (stderr, then stdout, where Hydra's console log goes)."""
    import logging

    from vae_lab.train import cli

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["vae_lab.train"])
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("VAE_LAB_NO_DOWNLOAD", "1")
    if data_root() is not None:
        monkeypatch.setenv("VAE_LAB_DATA", str(data_root()))
    capsys.readouterr()
    try:
        code = cli(args)
    finally:
        # Hydra's log handlers write to this test's captured streams, closed after it.
        for logger in [logging.getLogger(), *map(logging.getLogger, logging.root.manager.loggerDict)]:
            for handler in list(logger.handlers):
                if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                    logger.removeHandler(handler)
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def read_metrics(run_dir: Path) -> dict[str, float]:
    return json.loads((run_dir / "metrics.json").read_text())["metrics"]


def pytest_collection_modifyitems(config, items):
    """Slow (multi-process, end-to-end) tests first: with `-n 2` (make test) the long ones then
    overlap each other and the many short ones fill the end, instead of one long test finishing last."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def assert_same_training(one: Path, ddp: Path, steps: int) -> None:
    """Two run folders (one process, DDP) hold the same training: steps, final weights, metrics."""
    from vae_lab.restore import load

    for run in (one, ddp):
        assert json.loads((run / "metrics.json").read_text())["steps"] == steps
    weights = [load(run / "checkpoints" / "last.ckpt").state_dict() for run in (one, ddp)]
    assert weights[0].keys() == weights[1].keys()
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=1e-4, atol=1e-4, msg=name)
    single, multi = read_metrics(one), read_metrics(ddp)
    assert single.keys() == multi.keys()
    for name in single:
        assert multi[name] == pytest.approx(single[name], rel=1e-4, abs=1e-4), name
