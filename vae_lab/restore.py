"""Rebuild a trained model from its checkpoint alone: every checkpoint carries the composed config.

    import vae_lab
    model = vae_lab.load("outputs/<date>/<time>/checkpoints/best.ckpt")   # eval mode, on the CPU
    model.sample(16)

``VAEModule.load_from_checkpoint(path)`` is the same call.
"""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vae_lab import resolvers  # noqa: F401  (configs may name ${vae_lab.*:} resolvers)
from vae_lab.capability import AUTO
from vae_lab.checkpoints import UnreadableCheckpoint, read_checkpoint_file
from vae_lab.linear import set_linear_backend

CONFIG_KEY = "vae_lab_config"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with the reason and what to do."""


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint (on the CPU), which must carry the config of the run that wrote it."""
    try:
        checkpoint = read_checkpoint_file(path)
    except UnreadableCheckpoint as err:
        raise CheckpointError(str(err)) from None
    if CONFIG_KEY not in checkpoint:
        raise CheckpointError(
            f"checkpoint {path} carries no vae_lab config (written by an older version?); "
            "evaluate it with `python -m vae_lab.train train=false ckpt_path=<path>` and the run's overrides"
        )
    return checkpoint


def checkpoint_config(checkpoint: dict) -> DictConfig:
    """The composed (resolved) config of the run that wrote ``checkpoint``."""
    return OmegaConf.create(checkpoint[CONFIG_KEY])


def build_model(cfg: DictConfig, checkpoint: dict):
    """The model of ``cfg`` with the checkpoint's weights, in eval mode (its fp32 linear layers on
    the backend ``cfg.linear_backend`` picks for this machine)."""
    set_linear_backend(cfg.get("linear_backend", AUTO))
    model = instantiate(cfg.model)
    model.load_state_dict(checkpoint["state_dict"])
    model.run_config = checkpoint[CONFIG_KEY]
    return model.eval()


def load(path: str | Path, map_location: str | torch.device = "cpu"):
    """The trained ``VAEModule`` saved in ``path``, rebuilt with its parts, in eval mode."""
    checkpoint = read_checkpoint(path)
    return build_model(checkpoint_config(checkpoint), checkpoint).to(map_location)
