"""`python -m vae_lab.train [overrides]`: compose -> instantiate -> fit -> validate/test -> metrics.json.

Everything here is wiring; the model lives in vae_lab.model, the parts in conf/. A run folder
ends with either ``metrics.json`` (finished) or ``failure.json`` (the error, its traceback and
the step); re-running the same command in the same folder resumes from ``checkpoints/last.ckpt``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import traceback
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf, read_write

from vae_lab import resolvers  # noqa: F401  (registers ${vae_lab.*:} config resolvers)
from vae_lab.data.files import DataFileError

log = logging.getLogger("vae_lab")
METRICS_FILE, FAILURE_FILE = "metrics.json", "failure.json"


class ConfigError(ValueError):
    """A config value is out of range; raised before any training starts."""


class RunFolderConflict(ConfigError):
    """The run folder belongs to another job; nothing in it is touched."""


def job_overrides() -> list[str]:
    """This job's command-line overrides (what makes it this job inside a sweep)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def validate_config(cfg: DictConfig) -> None:
    """Top-level values checked before anything is built; parts check their own arguments."""
    if not isinstance(cfg.latent, int) or cfg.latent < 1:
        raise ConfigError(f"latent={cfg.latent}: the latent dimension must be a positive integer")
    if cfg.warmup < 0:
        raise ConfigError(f"warmup={cfg.warmup}: the β warm-up length must be >= 0 epochs")
    for key in ("iw_samples_val", "iw_samples_test"):
        if cfg.eval[key] < 0:
            raise ConfigError(f"eval.{key}={cfg.eval[key]}: must be >= 0 (0 skips the importance-sampled NLL)")
    if cfg.eval.iw_chunk_size < 1:
        raise ConfigError(f"eval.iw_chunk_size={cfg.eval.iw_chunk_size}: must be a positive integer")
    if cfg.eval_ckpt not in ("best", "last"):
        raise ConfigError(f"eval_ckpt={cfg.eval_ckpt}: expected 'best' or 'last'")
    if not isinstance(cfg.compile, bool):
        raise ConfigError(f"compile={cfg.compile}: expected true or false")
    if not isinstance(cfg.steps_per_call, int) or isinstance(cfg.steps_per_call, bool) or cfg.steps_per_call < 1:
        raise ConfigError(f"steps_per_call={cfg.steps_per_call}: must be a positive integer (1 = one batch per call)")
    if cfg.grad_clip is not None and not (isinstance(cfg.grad_clip, int | float) and cfg.grad_clip > 0):
        raise ConfigError(f"grad_clip={cfg.grad_clip}: the gradient-norm limit must be a number > 0, or null")
    # VAEModule steps its optimiser itself (manual optimisation), where Lightning's own
    # clipping and accumulation are unavailable: point to the equivalent instead.
    if cfg.trainer.get("gradient_clip_val") is not None:
        raise ConfigError(
            f"trainer.gradient_clip_val={cfg.trainer.gradient_clip_val}: use grad_clip={cfg.trainer.gradient_clip_val} "
            "instead (the model clips its own gradients)"
        )
    if cfg.trainer.get("accumulate_grad_batches", 1) != 1:
        raise ConfigError(
            f"trainer.accumulate_grad_batches={cfg.trainer.accumulate_grad_batches}: not supported; "
            "raise data.module.batch_size instead (or use more processes, trainer=ddp)"
        )


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
    datamodule = instantiate(cfg.data.module, steps_per_call=cfg.steps_per_call)
    model = instantiate(cfg.model)
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    trainer: L.Trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
    return datamodule, model, loggers, trainer


def resume_checkpoint(cfg: DictConfig, output_dir: Path) -> str | None:
    """Checkpoint to continue training from: ``ckpt_path`` (``last`` = this folder's), or with
    ``resume=true`` this folder's last checkpoint when an earlier attempt left one."""
    last = output_dir / "checkpoints" / "last.ckpt"
    if cfg.ckpt_path == "last":
        if not last.exists():
            raise ConfigError(f"ckpt_path=last: no {last}; run once without it, or give a checkpoint path")
        return str(last)
    if cfg.ckpt_path is not None:
        return cfg.ckpt_path
    if cfg.resume and last.exists():
        log.info("resuming from %s", last)
        return str(last)
    return None


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
    output_dir = Path(cfg.paths.output_dir)
    finished = output_dir / METRICS_FILE
    (output_dir / FAILURE_FILE).unlink(missing_ok=True)  # a retry starts clean
    if cfg.resume and cfg.train and finished.exists():
        summary = json.loads(finished.read_text())
        if summary.get("overrides") != job_overrides():
            raise RunFolderConflict(
                f"{output_dir} already holds a finished job with other overrides "
                f"({summary.get('overrides')} vs {job_overrides()}); use a new run folder or resume=false"
            )
        log.info("%s exists: job already finished, skipping (resume=false to train again)", finished)
        return summary["metrics"]
    validate_config(cfg)
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    pin_ddp_children_to_this_job(output_dir)
    datamodule, model, loggers, trainer = build(cfg)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    if cfg.train:
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_checkpoint(cfg, output_dir))
    elif cfg.ckpt_path is None:
        raise ConfigError("train=false needs ckpt_path=<checkpoint to evaluate>")
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
            "overrides": job_overrides(),
        }
        finished.write_text(json.dumps(summary, indent=2) + "\n")
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


def record_failure(output_dir: Path, err: BaseException) -> None:
    """Leave the error in the job folder, so a sweep's report can mark the job as failed."""
    step = getattr(err, "step", None)
    record = {"error": f"{type(err).__name__}: {err}", "step": step, "traceback": traceback.format_exc()}
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / FAILURE_FILE).write_text(json.dumps(record, indent=2) + "\n")


@contextlib.contextmanager
def job_scope():
    """Undo what a distributed job leaves in this process, so the next multirun job starts clean.

    Lightning's DDP launcher exports LOCAL_RANK, WORLD_SIZE, MASTER_PORT … into os.environ and
    keeps the process group; the next job in the same sweep process would then believe it was
    launched externally and wait for peers that have exited.
    """
    environ_before = dict(os.environ)
    try:
        yield
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for key in set(os.environ) - set(environ_before):
            del os.environ[key]
        os.environ.update(environ_before)


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    torch.set_float32_matmul_precision("high")
    output_dir = Path(cfg.paths.output_dir)
    try:
        with job_scope():
            metrics = run(cfg)
    except RunFolderConflict as err:
        print(f"error: {err}", file=sys.stderr)  # the folder is another job's: leave it as it is
        if _in_multirun():
            return float("nan")
        raise SystemExit(2) from None
    except (DataFileError, ConfigError, InstantiationException) as err:
        # Bad input: a one-line message, no traceback, nothing trained yet.
        record_failure(output_dir, err)
        log.error("%s", err)
        print(f"error: {err}", file=sys.stderr)
        if _in_multirun():
            return float("nan")  # a failed trial for sweepers that read the value (Optuna)
        raise SystemExit(2) from None
    except Exception as err:
        record_failure(output_dir, err)
        if _in_multirun():
            # One failed job must not stop the sweep: its folder says what happened.
            log.exception("job failed; see %s", output_dir / FAILURE_FILE)
            print(f"error: job {output_dir} failed: {type(err).__name__}: {err}", file=sys.stderr)
            return float("nan")
        raise
    return metrics.get("val/nll", metrics.get("val/neg_elbo"))


if __name__ == "__main__":
    main()
