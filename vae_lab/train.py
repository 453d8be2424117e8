"""`python -m vae_lab.train [overrides]`: compose -> instantiate -> fit -> validate/test -> run folder.

Everything here is wiring; the model lives in vae_lab.model, the parts in conf/, the run
folder's files in vae_lab.run_folder. A run folder ends finished (metrics) or failed (the error,
its traceback and the step); re-running the same command in the same folder resumes from its
last checkpoint.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import sys
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from vae_lab import resolvers  # noqa: F401  (registers ${vae_lab.*:} config resolvers)
from vae_lab.capability import LINEAR_BACKENDS, cpu_vendor, resolve_precision, trains_on_gpu
from vae_lab.checkpoints import AtomicCheckpointIO, NoLoadableCheckpoint, choose_resume_checkpoint
from vae_lab.compiling import AUTO, check_setting
from vae_lab.config import CONF_DIR
from vae_lab.data.datamodule import check_global_batch
from vae_lab.data.files import DataFileError
from vae_lab.linear import linear_backend, set_linear_backend
from vae_lab.run_folder import EVAL_KEYS, RunFolder

log = logging.getLogger("vae_lab")


class ConfigError(ValueError):
    """A config value is out of range; raised before any training starts."""


class RunFolderConflict(ConfigError):
    """The run folder belongs to another job; nothing in it is touched."""


def job_overrides() -> list[str]:
    """This job's command-line overrides (what makes it this job inside a sweep)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _int_at_least(value, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def validate_config(cfg: DictConfig) -> None:
    """Top-level values and part pairings checked before anything is built; parts check their own arguments."""
    if not _int_at_least(cfg.latent, 1):
        raise ConfigError(f"latent={cfg.latent}: the latent dimension must be a positive integer")
    validate_pairings(cfg)
    for key in ("batch_size", "eval_batch_size"):
        value = OmegaConf.select(cfg, f"data.module.{key}", default=1)
        if not _int_at_least(value, 1):
            raise ConfigError(f"data.module.{key}={value}: must be a positive integer (examples per batch)")
    devices, nodes = cfg.trainer.get("devices", 1), cfg.trainer.get("num_nodes", 1)
    if isinstance(devices, int) and isinstance(nodes, int):  # "auto" or a device list: checked by the loader
        try:
            check_global_batch(cfg.data.module.batch_size, devices * nodes)
        except ValueError as err:
            raise ConfigError(f"{err} (trainer.devices x trainer.num_nodes processes)") from None
    if not cfg.train and cfg.ckpt_path not in (None, "last") and not Path(cfg.ckpt_path).is_file():
        raise ConfigError(f"ckpt_path={cfg.ckpt_path}: no such checkpoint file to evaluate (train=false)")
    validate_eval(cfg.eval)
    if cfg.eval_ckpt not in ("best", "last"):
        raise ConfigError(f"eval_ckpt={cfg.eval_ckpt}: expected 'best' or 'last'")
    _check_compile_setting("compile", cfg.compile)
    check_linear_backend(cfg.get("linear_backend", AUTO))
    if not _int_at_least(cfg.steps_per_call, 1):
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


def check_linear_backend(value: object) -> None:
    if value not in (AUTO, *LINEAR_BACKENDS):
        raise ConfigError(f"linear_backend={value}: expected auto, {' or '.join(LINEAR_BACKENDS)}")


def validate_eval(eval_cfg: DictConfig) -> None:
    """The evaluation settings (also what ``vae_lab.evaluate`` may change)."""
    for key in ("iw_samples_val", "iw_samples_test"):
        value = eval_cfg[key]
        if not _int_at_least(value, 0):
            raise ConfigError(f"eval.{key}={value}: must be an integer >= 0 (0 skips the importance-sampled NLL)")
    if not _int_at_least(eval_cfg.get("hole_samples", 0), 0):
        raise ConfigError(
            f"eval.hole_samples={eval_cfg.hole_samples}: must be an integer >= 0 (0 skips the hole metrics)"
        )
    if not _int_at_least(eval_cfg.iw_chunk_size, 1):
        raise ConfigError(f"eval.iw_chunk_size={eval_cfg.iw_chunk_size}: must be a positive integer")
    _check_compile_setting("eval.compile", eval_cfg.get("compile", AUTO))
    if not isinstance(eval_cfg.get("train_set", False), bool):
        raise ConfigError(f"eval.train_set={eval_cfg.train_set}: must be true or false")


def _check_compile_setting(name: str, value: object) -> None:
    try:
        check_setting(name, value)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _choice(group: str) -> str:
    """The option picked for a config group, for messages (``data=ptb``)."""
    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.choices.get(group))
    return "?"


def validate_pairings(cfg: DictConfig) -> None:
    """Parts that do not fit each other are refused before anything is loaded, naming both;
    each part declares what it fits (the likelihood its data types, the latent family whether
    it needs pseudo-inputs), so nothing here tests concrete types."""
    data = f"data={cfg.data.name}"
    likelihood = get_class(cfg.likelihood._target_)
    data_type = OmegaConf.select(cfg, "data.type")
    if not likelihood.fits(data_type):
        fits = " or ".join(likelihood.data_types)
        raise ConfigError(
            f"likelihood={_choice('likelihood')} ({likelihood.__name__}, for {fits} data) "
            f"does not fit {data} ({data_type} data); drop likelihood= to use the data's own"
        )
    family = get_class(cfg.prior._target_)
    if family.needs_pseudo_inputs and OmegaConf.select(cfg, "data.pseudo_inputs") is None:
        raise ConfigError(
            f"prior={_choice('prior')} ({family.__name__}) needs pseudo-inputs in a continuous data space; "
            f"{data} ({data_type}) has none. Use prior=gauss or prior=vmf for this data"
        )
    expected = cfg.get("experiment_data")
    if expected and cfg.data.name not in expected:
        raise ConfigError(
            f"experiment={_choice('experiment')} is the protocol for data={' or '.join(expected)}, not {data}; "
            "drop data= (the experiment picks it) or choose the experiment of that data"
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


def resolve_trainer_precision(cfg: DictConfig) -> None:
    """``trainer.precision=auto`` becomes bf16-mixed or 32-true by what the hardware does natively;
    an explicit bf16 where it is not native is kept, with a warning."""
    precision, message = resolve_precision(cfg.trainer.precision, str(cfg.trainer.get("accelerator", "auto")))
    if message:
        (log.info if cfg.trainer.precision == "auto" else log.warning)("%s", message)
    with open_dict(cfg):
        cfg.trainer.precision = precision


def resolve_linear_backend(cfg: DictConfig) -> None:
    """Set the fp32 linear layers' backend (``linear_backend``) for this process and say which was picked."""
    requested = cfg.get("linear_backend", AUTO)
    chosen = set_linear_backend(requested)
    log.info(
        "linear_backend=%s: fp32 linear layers on %s (CPU vendor: %s)", requested, chosen, cpu_vendor() or "unknown"
    )


# Below this many importance samples per pass, a GPU's test pass is bound by kernel launches.
GPU_CHUNK_HINT = 256


def note_gpu_evaluation_chunk(cfg: DictConfig) -> None:
    """eval.iw_chunk_size's default is sized for CPU caches; on a GPU, say that larger chunks pay."""
    chunk, samples = cfg.eval.iw_chunk_size, cfg.eval.iw_samples_test
    if trains_on_gpu(str(cfg.trainer.get("accelerator", AUTO))) and chunk < min(GPU_CHUNK_HINT, samples):
        log.info(
            "eval.iw_chunk_size=%d decodes that many importance samples per pass (sized for CPU caches); on "
            "a GPU the test pass at S=%d goes faster with larger chunks, e.g. eval.iw_chunk_size=1000 for "
            "784-pixel images (README: Speed, on a GPU); memory grows with the chunk",
            chunk,
            samples,
        )


def build(cfg: DictConfig):
    """Instantiate datamodule, model, loggers, callbacks and trainer from a composed config."""
    resolve_trainer_precision(cfg)
    resolve_linear_backend(cfg)
    note_gpu_evaluation_chunk(cfg)
    datamodule = instantiate(cfg.data.module, steps_per_call=cfg.steps_per_call)
    model = instantiate(cfg.model)
    model.run_config = OmegaConf.to_container(cfg, resolve=True)  # checkpoints carry it (vae_lab.load)
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    # trainer.log_every_n_steps counts optimiser steps; Lightning counts its batches, which are
    # groups of steps_per_call steps.
    log_every = max(1, cfg.trainer.get("log_every_n_steps", 50) // cfg.steps_per_call)
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        logger=loggers or False,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],  # checkpoints written to a temporary file, then renamed
        log_every_n_steps=log_every,
    )
    return datamodule, model, loggers, trainer


def resume_checkpoint(cfg: DictConfig, folder: RunFolder) -> str | None:
    """Checkpoint to continue training from: ``ckpt_path`` (``last`` = this folder's), or with
    ``resume=true`` this folder's last checkpoint when an earlier attempt left one. An unreadable
    one (a torn write) is named and the newest loadable checkpoint of the folder used instead."""
    last = folder.checkpoint("last")
    if cfg.ckpt_path == "last":
        if not last.exists():
            raise ConfigError(f"ckpt_path=last: no {last}; run once without it, or give a checkpoint path")
    elif cfg.ckpt_path is not None:
        return cfg.ckpt_path
    elif not (cfg.resume and last.exists()):
        return None
    try:
        chosen, warnings = choose_resume_checkpoint(folder.checkpoint_dir, last)
    except NoLoadableCheckpoint as err:
        raise ConfigError(str(err)) from None
    for warning in warnings:
        log.warning("%s", warning)
    log.info("resuming from %s", chosen)
    return str(chosen)


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
    folder = RunFolder(cfg.paths.output_dir)
    folder.clear_failure()  # a retry starts clean
    summary = folder.summary()
    if cfg.resume and cfg.train and summary is not None:
        if summary.get("overrides") != job_overrides():
            raise RunFolderConflict(
                f"{folder.path} already holds a finished job with other overrides "
                f"({summary.get('overrides')} vs {job_overrides()}); use a new run folder or resume=false"
            )
        log.info("%s: job already finished, skipping (resume=false to train again)", folder.path)
        return summary["metrics"]
    validate_config(cfg)
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    pin_ddp_children_to_this_job(folder.path)
    datamodule, model, loggers, trainer = build(cfg)
    for logger in loggers:
        logger.log_hyperparams(model.run_config)

    if cfg.train:
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_checkpoint(cfg, folder))
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
    if cfg.eval.get("train_set"):
        metrics.update(score_training_set(trainer, model, datamodule, ckpt, weights_only))

    if trainer.is_global_zero:
        folder.write_summary(
            metrics,
            checkpoint=ckpt,
            epochs=trainer.current_epoch,
            steps=trainer.global_step,
            overrides=job_overrides(),
            eval={key: cfg.eval[key] for key in EVAL_KEYS} | {"checkpoint": cfg.eval_ckpt},
            precision=str(cfg.trainer.precision),
            linear_backend=linear_backend(),
            compiled_training=bool(model.compile_loss),
        )
        print_metrics(metrics, folder.path)
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()  # one W&B run per job, also inside --multirun
    return metrics


def score_training_set(trainer: L.Trainer, model, datamodule, ckpt: str | None, weights_only: dict) -> dict:
    """The training set's reconstruction error and the rest of the evaluation metrics (no
    importance sampling), logged as train_set/...: the error the optimiser actually reached."""
    log.info("eval.train_set=true: scoring the training set (%d examples)", len(datamodule.splits.train))
    model.validation_stage = "train_set"
    try:
        loader = datamodule.train_set_dataloader()
        results = trainer.validate(model, dataloaders=loader, ckpt_path=ckpt, verbose=False, **weights_only)
    finally:
        model.validation_stage = "val"
    return {k: float(v) for k, v in results[0].items()}


def print_metrics(metrics: dict[str, float], title: object) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"vae_lab metrics ({title})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in sorted(metrics):
        table.add_row(name, f"{metrics[name]:.4f}")
    Console().print(table)


def one_line(err: BaseException) -> str:
    """The message of a bad-input error; Hydra's instantiation wrapper is peeled off."""
    if isinstance(err, InstantiationException) and err.__cause__ is not None:
        return f"{err.__cause__}"
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


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


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    torch.set_float32_matmul_precision("high")
    folder = RunFolder(cfg.paths.output_dir)
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
        folder.write_failure(err)
        log.error("%s", one_line(err))
        print(f"error: {one_line(err)}", file=sys.stderr)
        if _in_multirun():
            return float("nan")  # a failed trial for sweepers that read the value (Optuna)
        raise SystemExit(2) from None
    except Exception as err:
        folder.write_failure(err)
        if _in_multirun():
            # One failed job must not stop the sweep: its folder says what happened.
            log.exception("job failed; see %s", folder.failure_file)
            print(f"error: job {folder.path} failed: {type(err).__name__}: {err}", file=sys.stderr)
            return float("nan")
        raise
    return metrics.get("val/nll", metrics.get("val/neg_elbo"))


def suggest_keys(overrides: list[str]) -> list[str]:
    """For each ``a.b.key=value`` override whose key does not exist, the closest existing keys."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from vae_lab.config import compose_train_config

    try:
        parsed = OverridesParser.create().parse_overrides([o for o in overrides if "=" in o])
        groups = [o.input_line for o in parsed if "." not in o.key_or_group and not o.is_add()]
        cfg = compose_train_config(groups, output_dir=".")
    except Exception:  # the groups themselves are wrong: Hydra's own message says so
        return []
    hints = []
    for override in parsed:
        key = override.key_or_group
        if override.is_add() or override.is_delete() or "." not in key or "@" in key:
            continue
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent, default=None)
        if isinstance(node, DictConfig) and leaf not in node:
            close = difflib.get_close_matches(leaf, [str(k) for k in node], n=3, cutoff=0.6)
            if close:
                hints.append(f"{key} is not a config key; did you mean {' or '.join(f'{parent}.{c}' for c in close)}?")
            else:
                hints.append(f"{key} is not a config key; {parent} has: {', '.join(map(str, node))}")
    return hints


def cli(argv: list[str] | None = None) -> int:
    """``python -m vae_lab.train`` as a function (tests call it in-process): the exit code."""
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    try:
        main()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
        if code == 1:  # Hydra refused the overrides; name the keys that were meant
            for hint in suggest_keys(sys.argv[1:]):
                print(f"error: {hint}", file=sys.stderr)
        return code
    return 0


if __name__ == "__main__":
    sys.exit(cli())
