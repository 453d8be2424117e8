"""Config resolvers: W&B groups and tags from the running Hydra job, storage paths, derived widths."""

from __future__ import annotations

import math
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

TAGGED_KEYS = ("prior", "data", "latent", "seed", "experiment", "decoder", "encoder", "objective", "likelihood")


def sweep_group() -> str | None:
    """The sweep's folder name (``<date>_<time>``) inside --multirun, else None."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    sweep_dir = Path(HydraConfig.get().sweep.dir)
    return f"{sweep_dir.parent.name}_{sweep_dir.name}"


def job_tags() -> list[str]:
    """The job's overrides of the interesting keys, e.g. ['prior=vamp', 'latent=10']."""
    if not HydraConfig.initialized():
        return []
    overrides = HydraConfig.get().overrides.task
    return [o.lstrip("+~") for o in overrides if o.lstrip("+~").split("=")[0].split(".")[0] in TAGGED_KEYS]


OmegaConf.register_new_resolver("vae_lab.sweep_group", sweep_group, replace=True)
OmegaConf.register_new_resolver("vae_lab.job_tags", job_tags, replace=True)


def sqlite_url(path: str) -> str:
    """``sqlite:///<abs path>``, creating the folder: sweepers open storage before jobs run."""
    target = Path(path).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{target}"


OmegaConf.register_new_resolver("vae_lab.sqlite", sqlite_url, replace=True)


def decoder_features(hidden: int, latent: int, skip_z: bool) -> int:
    """The width of the decoder features a likelihood head reads: ``hidden``, plus the latent
    code where the decoder passes z through (``decoder.skip_z``, the skip-VAE)."""
    return int(hidden) + int(latent) * bool(skip_z)


OmegaConf.register_new_resolver("vae_lab.decoder_features", decoder_features, replace=True)
OmegaConf.register_new_resolver("vae_lab.product", lambda a, b: int(a) * int(b), replace=True)
OmegaConf.register_new_resolver("vae_lab.isqrt", lambda n: math.isqrt(int(n)), replace=True)

D_CONVENTIONS = ("sphere", "ambient")


def latent_dim_for_d(d: int, convention: str, family: str) -> int:
    """The latent size of a family for the hyperspherical VAE paper's "d" (experiment=svae_mnist):
    a spherical family gets R^(d+1) under ``sphere`` (d = the sphere's own dimension, S^d, as the
    official example builds it) and R^d under ``ambient``; a flat family gets d either way."""
    from hydra.utils import get_class

    if convention not in D_CONVENTIONS:
        raise ValueError(f"d_convention={convention!r}: expected one of {', '.join(D_CONVENTIONS)}")
    return int(d) + (convention == "sphere" and get_class(family).lives_on_sphere)


OmegaConf.register_new_resolver("vae_lab.latent_dim_for_d", latent_dim_for_d, replace=True)
