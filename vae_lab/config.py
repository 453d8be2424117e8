"""Compose the training config outside the CLI (notebooks, benchmarks, tests).

Importing this module registers vae_lab's config resolvers, so every option composes and
resolves in a fresh process (``logger=wandb`` names its runs through them).
"""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from vae_lab import resolvers  # noqa: F401  (registers ${vae_lab.*:} resolvers)

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def compose_with_hydra(overrides: list[str]) -> DictConfig:
    """The composed config of `python -m vae_lab.train <overrides>`, its ``hydra`` node included."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def task_config(composed: DictConfig, output_dir: str | Path) -> DictConfig:
    """The task config a run sees (no ``hydra`` node), writing into ``output_dir``. Modifies ``composed``."""
    HydraConfig.instance().set_config(composed)  # so ${hydra:...} interpolations resolve
    with open_dict(composed):
        del composed["hydra"]
        composed.paths.output_dir = str(output_dir)
    return composed


def compose_train_config(overrides: list[str], output_dir: str | Path = "outputs/composed") -> DictConfig:
    """The config `python -m vae_lab.train <overrides>` would run, writing into ``output_dir``."""
    return task_config(compose_with_hydra(overrides), output_dir)
