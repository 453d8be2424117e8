"""Shared test helpers: the data root, Hydra composition, and running the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"


def data_root() -> Path | None:
    root = os.environ.get("VAE_LAB_DATA") or (REPO.parent / "shared" / "data")
    root = Path(root)
    return root if (root / "mnist" / "train-images-idx3-ubyte.gz").exists() else None


needs_real_data = pytest.mark.skipif(
    data_root() is None, reason="real datasets not found (set VAE_LAB_DATA or place ../shared/data)"
)


def compose_config(overrides: list[str], output_dir: Path):
    """The config `python -m vae_lab.train <overrides>` would run, writing into output_dir."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # as in a real run: the task config without the hydra node
        cfg.paths.output_dir = str(output_dir)
        if data_root() is not None:
            cfg.data.root = str(data_root())
    return cfg


def run_cli(
    args: list[str], cwd: Path, timeout: float = 600, check: bool = True, module: str = "vae_lab.train"
):
    """Run `python -m vae_lab.train <args>` in a subprocess, as a user would."""
    env = {**os.environ, "WANDB_MODE": "offline", "VAE_LAB_NO_DOWNLOAD": "1"}
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
        raise AssertionError(
            f"CLI failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        )
    return result


def read_metrics(run_dir: Path) -> dict[str, float]:
    return json.loads((run_dir / "metrics.json").read_text())["metrics"]
