"""`python -m vae_lab.train [overrides]`: compose -> instantiate -> fit -> validate/test -> metrics.json.

Everything here is wiring; the model lives in vae_lab.model, the parts in conf/.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf, read_write

from vae_lab.data.files import DataFileError

log = logging.getLogger("vae_lab")


def pin_ddp_children_to_this_job(output_dir: Path) -> None:
    """Make DDP worker processes re-run exactly this job, in this job's folder.

    Lightning starts ranks > 0 by re-running ``sys.argv`` with ``hydra.run.dir`` set to the
    parent's run dir. Inside ``--multirun`` that would re-launch the whole sweep from every
    rank and write elsewhere, so the command becomes this job's own overrides, single-run.
    """
    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    sys.argv = [sys.argv[0], *hydra_cfg.overrides.task]
    with read_write(hydra_cfg):
        hydra_cfg.run.dir = str(output_dir)


def build(cfg: DictConfig):
    """Instantiate datamodule, model, loggers, callbacks and trainer from a composed config."""
    datamodule = instantiate(cfg.data.module)
    model = instantiate(cfg.model)
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    trainer: L.Trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
    return datamodule, model, loggers, trainer


def _evaluation_checkpoint(cfg: DictConfig, trainer: L.Trainer) -> str | None:
    """The checkpoint the final validation/test uses: best (or last) of this run, or ckpt_path."""
    if not cfg.train:
        return cfg.ckpt_path
    checkpoint = trainer.checkpoint_callback
    if trainer.fast_dev_run or not isinstance(checkpoint, ModelCheckpoint):
        return None  # evaluate the weights in memory
    path = checkpoint.best_model_path if cfg.eval_ckpt == "best" else checkpoint.last_model_path
    return path or None


def run(cfg: DictConfig) -> dict[str, float]:
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    output_dir = Path(cfg.paths.output_dir)
    pin_ddp_children_to_this_job(output_dir)
    datamodule, model, loggers, trainer = build(cfg)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    if cfg.train:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    elif cfg.ckpt_path is None:
        raise ValueError("train=false needs ckpt_path=<checkpoint to evaluate>")
    ckpt = _evaluation_checkpoint(cfg, trainer)
    weights_only = {"weights_only": True} if ckpt else {}
    metrics: dict[str, float] = {}
    for results in (
        trainer.validate(model, datamodule=datamodule, ckpt_path=ckpt, **weights_only),
        trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, **weights_only),
    ):
        metrics.update({k: float(v) for k, v in results[0].items()})

    if trainer.is_global_zero:
        summary = {
            "metrics": metrics,
            "checkpoint": ckpt,
            "epochs": trainer.current_epoch,
            "steps": trainer.global_step,
        }
        (output_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
        print_metrics(metrics, output_dir)
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()  # one W&B run per job, also inside --multirun
    return metrics


def print_metrics(metrics: dict[str, float], output_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"vae_lab metrics ({output_dir})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in sorted(metrics):
        table.add_row(name, f"{metrics[name]:.4f}")
    Console().print(table)


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    torch.set_float32_matmul_precision("high")
    try:
        metrics = run(cfg)
    except DataFileError as err:
        log.error("%s", err)  # into the run's log file
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    return metrics.get("val/nll", metrics.get("val/neg_elbo"))


if __name__ == "__main__":
    main()
