"""Sweeps that survive: kill-and-resume, failure isolation, NaN guard, DDP inside multirun, bad input."""

from __future__ import annotations

import json

import pytest

from tests.conftest import read_metrics, run_cli

FAST = [
    "data=synthetic",
    "eval.iw_samples_val=5",
    "eval.iw_samples_test=20",
    "callbacks.media.every_n_epochs=100",
]


def test_killed_run_resumes_to_the_same_final_metrics(tmp_path):
    args = [*FAST, "trainer.max_epochs=3", "warmup=2"]  # 20 steps per epoch; β changes per epoch
    run_cli([*args, f"hydra.run.dir={tmp_path / 'whole'}"], cwd=tmp_path)
    interrupted = tmp_path / "interrupted"
    kill = ["+callbacks.kill._target_=tests.killer.KillAtStep", "+callbacks.kill.step=50"]
    killed = run_cli([*args, *kill, f"hydra.run.dir={interrupted}"], cwd=tmp_path, check=False)
    assert killed.returncode == -9  # SIGKILL mid-epoch 3 (steps 40-59)
    assert (interrupted / "checkpoints" / "last.ckpt").exists() and not (interrupted / "metrics.json").exists()
    run_cli([*args, f"hydra.run.dir={interrupted}"], cwd=tmp_path)  # the same command again
    assert read_metrics(interrupted) == pytest.approx(read_metrics(tmp_path / "whole"), rel=1e-5, abs=1e-5)


def test_finished_job_is_skipped_when_rerun(tmp_path):
    args = [*FAST, "trainer.max_epochs=1", f"hydra.run.dir={tmp_path / 'run'}"]
    run_cli(args, cwd=tmp_path)
    first = (tmp_path / "run" / "metrics.json").read_text()
    again = run_cli(args, cwd=tmp_path)
    assert "already finished" in again.stdout + again.stderr
    assert (tmp_path / "run" / "metrics.json").read_text() == first
    other = run_cli([*args, "latent=5"], cwd=tmp_path, check=False)  # another job, same folder
    assert other.returncode == 2 and "already holds a finished job with other overrides" in other.stderr
    assert (tmp_path / "run" / "metrics.json").read_text() == first


def test_failed_job_does_not_stop_the_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    run_cli(
        ["--multirun", *FAST, "trainer.max_epochs=1", "latent=2,3,0,4", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    done = sorted(p.parent.name for p in sweep.glob("*/metrics.json"))
    failed = sorted(p.parent.name for p in sweep.glob("*/failure.json"))
    assert done == ["0", "1", "3"] and failed == ["2"]
    failure = json.loads((sweep / "2" / "failure.json").read_text())
    assert "latent=0" in failure["error"] and "positive integer" in failure["error"]


def test_non_finite_loss_stops_with_the_term_step_and_checkpoint(tmp_path):
    poison = ["+callbacks.poison._target_=tests.killer.PoisonWeightsAtStep", "+callbacks.poison.step=25"]
    result = run_cli(
        [*FAST, "trainer.max_epochs=3", *poison, f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode != 0
    failure = json.loads((tmp_path / "run" / "failure.json").read_text())
    assert failure["step"] == 25
    assert "non-finite reconstruction log p(x|z)" in failure["error"] and "GaussianLatent" in failure["error"]
    assert "last.ckpt" in failure["error"] and (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


@pytest.mark.slow
def test_ddp_inside_multirun_runs_each_job_once(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(
        [
            "--multirun",
            *FAST,
            "trainer=ddp_cpu",
            "trainer.max_epochs=1",
            "latent=2,3",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
    )
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0", "1"]  # the ranks did not re-launch the sweep
    for job, latent in (("0", 2), ("1", 3)):
        summary = json.loads((sweep / job / "metrics.json").read_text())
        assert summary["steps"] == 10  # 2000 examples / (2 processes x batch 100)
        assert f"latent: {latent}" in (sweep / job / ".hydra" / "config.yaml").read_text()
    assert result.stdout.count("MEMBER: 2/2") + result.stderr.count("MEMBER: 2/2") == 2


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("latent=-3", "latent=-3: the latent dimension must be a positive integer"),
        ("warmup=-1", "warmup=-1"),
        ("eval.iw_chunk_size=0", "eval.iw_chunk_size=0"),
        ("latnet=5", "Key 'latnet' is not in struct"),
        ("prior=vamp prior.components=0", "prior.components=0: the VampPrior needs at least one pseudo-input"),
        ("prior=vmf prior.kappa=0", "prior.kappa=0"),
        ("prior=vmf prior.kappa=-2", "a fixed concentration must be > 0"),
        ("trainer=tpu", "Available options in 'trainer'"),
        ("grad_clip=-1", "grad_clip=-1: the gradient-norm limit must be a number > 0"),
        ("steps_per_call=0", "steps_per_call=0: must be a positive integer"),
        ("compile=maybe", "compile=maybe: expected true or false"),
        ("+trainer.gradient_clip_val=0.5", "use grad_clip=0.5 instead"),
        ("+trainer.accumulate_grad_batches=4", "raise data.module.batch_size instead"),
    ],
)
def test_bad_input_fails_before_training_with_a_clear_message(tmp_path, override, message):
    result = run_cli([*FAST, *override.split(), f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()
