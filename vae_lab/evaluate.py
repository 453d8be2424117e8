"""`python -m vae_lab.evaluate RUN_FOLDER [eval.KEY=VALUE ...] [--last]`: re-score a finished run.

Loads the run's best (or ``--last``) checkpoint, which carries the run's composed config,
changes only the evaluation settings given (``eval.iw_samples_test=5000``, ``eval.iw_chunk_size``,
``eval.iw_samples_val``), runs the test set with a progress bar and stores the metrics in the
run folder beside the training-time ones, keyed by the settings. So a long run can train with
cheap validation and be scored with the paper's 5000 importance samples afterwards;
``vae_lab.report`` then uses the most precise evaluation of each run and says which.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from vae_lab.callbacks.progress import ProgressBar
from vae_lab.compiling import AUTO
from vae_lab.data.files import DataFileError
from vae_lab.restore import CheckpointError, build_model, checkpoint_config, read_checkpoint
from vae_lab.run_folder import EVAL_KEYS, RunFolder, evaluation_key
from vae_lab.train import ConfigError, check_linear_backend, one_line, print_metrics, validate_eval

# Besides the eval.* settings keyed in metrics.json, what may differ without changing what is measured.
# eval.compile, linear_backend: speed only (same estimate to 1e-4); eval.hole_samples: the hole metrics' own precision.
SETTABLE = ("eval.compile", "eval.hole_samples", "data.root", "threads", "linear_backend")


def parse_overrides(overrides: list[str]) -> dict[str, object]:
    values = {}
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep:
            raise ConfigError(f"{override!r}: expected KEY=VALUE, e.g. eval.iw_samples_test=5000")
        allowed = key in SETTABLE or (key.startswith("eval.") and key.split(".", 1)[1] in EVAL_KEYS)
        if not allowed:
            keys = ", ".join([f"eval.{k}" for k in EVAL_KEYS] + list(SETTABLE))
            raise ConfigError(f"{key}: only evaluation settings can change when re-evaluating ({keys})")
        values[key] = OmegaConf.from_dotlist([f"x={value}"]).x  # YAML typing, as on the train CLI
    return values


def evaluate(
    folder: Path, overrides: list[str], which: str = "best", skip_done: bool = False
) -> tuple[str, dict[str, float]]:
    """Re-evaluate ``folder``'s checkpoint with ``overrides``; returns the evaluation's key and metrics.
    ``skip_done``: an evaluation with the same settings already stored is returned as it is."""
    run = RunFolder(folder)
    summary = run.summary()
    if summary is None:
        raise ConfigError(f"{folder}: no finished run here (train it first, or check the path)")
    path = run.checkpoint(which)
    checkpoint = read_checkpoint(path)
    cfg = checkpoint_config(checkpoint)
    with open_dict(cfg):
        for key, value in parse_overrides(overrides).items():
            OmegaConf.update(cfg, key, value)
    validate_eval(cfg.eval)
    check_linear_backend(cfg.get("linear_backend", AUTO))
    settings = {key: cfg.eval[key] for key in EVAL_KEYS} | {"checkpoint": which}
    key = evaluation_key(settings)
    done = (summary.get("evaluations") or {}).get(key)
    if skip_done and done is not None:
        print(f"{folder}: already evaluated with {key} (--skip-done): stored metrics")
        return key, done["metrics"]
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    model = build_model(cfg, checkpoint)
    evaluation = cfg.eval
    model.set_evaluation(
        evaluation.iw_samples_val,
        evaluation.iw_samples_test,
        evaluation.iw_chunk_size,
        cfg.seed,
        evaluation.get("compile", AUTO),  # checkpoints older than eval.compile
        evaluation.get("hole_samples", 0),  # checkpoints older than the hole metrics: none unless asked
    )
    datamodule = instantiate(cfg.data.module, steps_per_call=1)
    trainer = L.Trainer(
        accelerator=cfg.trainer.get("accelerator", "auto"),
        devices=1,
        logger=False,
        callbacks=[ProgressBar()],
        enable_model_summary=False,
        default_root_dir=str(run.path),
    )
    metrics = {k: float(v) for k, v in trainer.test(model, datamodule=datamodule, verbose=False)[0].items()}
    run.add_evaluation(settings, metrics, str(path))  # stored under the same key
    return key, metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae_lab.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a finished run folder (one job of vae_lab.train)")
    parser.add_argument("overrides", nargs="*", help="evaluation settings, e.g. eval.iw_samples_test=5000")
    parser.add_argument("--last", action="store_true", help="evaluate checkpoints/last.ckpt instead of best.ckpt")
    parser.add_argument(
        "--skip-done", action="store_true", help="do nothing where these settings were evaluated before (resuming)"
    )
    args = parser.parse_args(argv)
    torch.set_float32_matmul_precision("high")
    try:
        key, metrics = evaluate(args.folder, args.overrides, "last" if args.last else "best", args.skip_done)
    except (ConfigError, CheckpointError, DataFileError, InstantiationException) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    print_metrics(metrics, f"{args.folder}, {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
