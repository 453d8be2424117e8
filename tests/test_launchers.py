"""Launchers, sweepers and loggers of sweeps: joblib, submitit, SLURM config, Optuna, W&B offline."""

from __future__ import annotations

import re

import optuna
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from tests.conftest import NO_FIGURES, cli_in_process, read_metrics, run_cli
from vae_lab.config import CONF_DIR

FAST = ["data=synthetic", "trainer.max_epochs=1", "eval.iw_samples_val=5", "eval.iw_samples_test=5", *NO_FIGURES]


@pytest.mark.slow
def test_joblib_launcher_runs_jobs_in_parallel(tmp_path):
    sweep = tmp_path / "sweep"
    args = [
        "--multirun",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "threads=1",
        *FAST,
        "latent=2,3",
    ]
    result = run_cli([*args, f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert "Joblib.Parallel(n_jobs=2" in result.stdout + result.stderr
    assert read_metrics(sweep / "0") and read_metrics(sweep / "1")


@pytest.mark.slow
def test_submitit_local_launcher(tmp_path):
    sweep = tmp_path / "sweep"
    run_cli(
        ["--multirun", "hydra/launcher=submitit_local", *FAST, "latent=2", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    assert read_metrics(sweep / "0")["test/neg_elbo"] > 0
    assert (sweep / ".submitit").is_dir()


def test_slurm_launcher_config_maps_trainer_to_slurm_resources():
    overrides = [
        "hydra/launcher=slurm",
        "trainer=ddp_slurm",
        "trainer.num_nodes=2",
        "hydra.launcher.partition=gpu",
    ]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert launcher.partition == "gpu"
    assert (cfg.trainer.strategy, cfg.trainer.accelerator) == ("ddp", "gpu")


@pytest.mark.slow
def test_optuna_search_minimises_validation_nll_and_stores_trials(tmp_path, monkeypatch, capsys):
    sweep = tmp_path / "sweep"
    args = ["hparams_search=vae_optuna", *FAST, "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={sweep}"]
    assert cli_in_process(args, tmp_path, monkeypatch, capsys)[0] == 0
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    trial_nlls = [read_metrics(sweep / str(i))["val/nll"] for i in range(2)]
    assert results["best_value"] == pytest.approx(min(trial_nlls))
    # A new sweep folder with the same storage adds trials to the study instead of starting over.
    storage = f"sqlite:///{sweep / 'optuna.db'}"
    more = [
        "hparams_search=vae_optuna",
        *FAST,
        "hydra.sweeper.n_trials=1",
        f"hydra.sweeper.storage={storage}",
    ]
    assert cli_in_process([*more, f"hydra.sweep.dir={tmp_path / 'more'}"], tmp_path, monkeypatch, capsys)[0] == 0
    study = optuna.load_study(study_name="vae_lab_synthetic", storage=storage)
    assert len(study.trials) == 3


@pytest.mark.slow
def test_wandb_offline_runs_share_the_sweep_group_and_carry_override_tags(tmp_path, monkeypatch, capsys):
    sweep = tmp_path / "multirun" / "2026-01-02" / "03-04-05"
    args = ["--multirun", "logger=wandb", *FAST, "latent=2,3", f"hydra.sweep.dir={sweep}"]
    assert cli_in_process(args, tmp_path, monkeypatch, capsys)[0] == 0
    for job, latent in (("0", 2), ("1", 3)):
        runs = list((sweep / job / "wandb").glob("offline-run-*/run-*.wandb"))
        assert len(runs) == 1  # a local run folder that `wandb sync` uploads later
        log = (sweep / job / "wandb" / "debug.log").read_text()
        assert re.search(r"'group': '2026-01-02_03-04-05'", log)
        assert f"'tags': ['data=synthetic', 'latent={latent}']" in log
        assert "'iw_samples_test': 5" in log  # the composed config is logged
