"""Sweeps that survive: kill-and-resume, failure isolation, NaN guard, DDP inside multirun, bad input."""

from __future__ import annotations

import json

import pytest

from tests.conftest import NO_FIGURES, cli_in_process, read_metrics, run_cli

FAST = [
    "data=synthetic",
    "eval.iw_samples_val=5",
    "eval.iw_samples_test=20",
    "callbacks.media.every_n_epochs=100",
    *NO_FIGURES,
]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_final_metrics(tmp_path, monkeypatch, capsys):
    args = [*FAST, "trainer.max_epochs=3", "warmup=2"]  # 20 steps per epoch; β changes per epoch
    assert cli_in_process([*args, f"hydra.run.dir={tmp_path / 'whole'}"], tmp_path, monkeypatch, capsys)[0] == 0
    interrupted = tmp_path / "interrupted"
    kill = ["+callbacks.kill._target_=tests.killer.KillAtStep", "+callbacks.kill.step=50"]
    killed = run_cli([*args, *kill, f"hydra.run.dir={interrupted}"], cwd=tmp_path, check=False)
    assert killed.returncode == -9  # SIGKILL mid-epoch 3 (steps 40-59)
    assert (interrupted / "checkpoints" / "last.ckpt").exists() and not (interrupted / "metrics.json").exists()
    # The same command again (in-process: only the kill needs a process of its own).
    assert cli_in_process([*args, f"hydra.run.dir={interrupted}"], tmp_path, monkeypatch, capsys)[0] == 0
    assert read_metrics(interrupted) == pytest.approx(read_metrics(tmp_path / "whole"), rel=1e-5, abs=1e-5)


@pytest.mark.slow
def test_finished_job_is_skipped_when_rerun(tmp_path, monkeypatch, capsys):
    args = [*FAST, "trainer.max_epochs=1", f"hydra.run.dir={tmp_path / 'run'}"]
    assert cli_in_process(args, tmp_path, monkeypatch, capsys)[0] == 0
    first = (tmp_path / "run" / "metrics.json").read_text()
    code, out = cli_in_process(args, tmp_path, monkeypatch, capsys)
    assert code == 0 and "already finished" in out
    assert (tmp_path / "run" / "metrics.json").read_text() == first
    code, out = cli_in_process([*args, "latent=5"], tmp_path, monkeypatch, capsys)  # another job, same folder
    assert code == 2 and "already holds a finished job with other overrides" in out
    assert (tmp_path / "run" / "metrics.json").read_text() == first


@pytest.mark.slow
def test_failed_job_does_not_stop_the_sweep(tmp_path, monkeypatch, capsys):
    sweep = tmp_path / "sweep"
    args = ["--multirun", *FAST, "trainer.max_epochs=1", "latent=2,3,0,4", f"hydra.sweep.dir={sweep}"]
    assert cli_in_process(args, tmp_path, monkeypatch, capsys)[0] == 0  # the sweep itself succeeds
    done = sorted(p.parent.name for p in sweep.glob("*/metrics.json"))
    failed = sorted(p.parent.name for p in sweep.glob("*/failure.json"))
    assert done == ["0", "1", "3"] and failed == ["2"]
    failure = json.loads((sweep / "2" / "failure.json").read_text())
    assert "latent=0" in failure["error"] and "positive integer" in failure["error"]


@pytest.mark.slow
def test_non_finite_loss_stops_with_the_term_step_and_checkpoint(tmp_path, monkeypatch, capsys):
    poison = ["+callbacks.poison._target_=tests.killer.PoisonWeightsAtStep", "+callbacks.poison.step=20"]
    args = [*FAST, "trainer.max_epochs=3", *poison, f"hydra.run.dir={tmp_path / 'run'}"]
    assert cli_in_process(args, tmp_path, monkeypatch, capsys)[0] != 0
    failure = json.loads((tmp_path / "run" / "failure.json").read_text())
    assert failure["step"] == 20
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
        assert summary["steps"] == 20  # 2000 examples / a global batch of 100 (50 per process)
        assert f"latent: {latent}" in (sweep / job / ".hydra" / "config.yaml").read_text()
    assert result.stdout.count("MEMBER: 2/2") + result.stderr.count("MEMBER: 2/2") == 2


BAD_INPUT = [
    ("latent=-3", "latent=-3: the latent dimension must be a positive integer"),
    ("trainer=ddp_cpu data.module.batch_size=99", "batch_size=99 is the global batch, split over the 2 processes"),
    ("warmup=-1", "objective.warmup=-1: the β warm-up length must be an integer >= 0 epochs"),
    ("warmup=ten", "objective.warmup='ten': the β warm-up length must be an integer >= 0 epochs"),
    ("eval.iw_chunk_size=0", "eval.iw_chunk_size=0"),
    ("data.module.batch_size=0", "data.module.batch_size=0: must be a positive integer"),
    ("train=false ckpt_path=missing.ckpt", "ckpt_path=missing.ckpt: no such checkpoint file"),
    ("prior=vamp data=ptb", "prior=vamp (VampPriorLatent) needs pseudo-inputs in a continuous data space; data=ptb"),
    (
        "likelihood=bernoulli data=frey",
        "likelihood=bernoulli (BernoulliLikelihood, for binary data) does not fit data=frey",
    ),
    ("likelihood=bag_of_words", "likelihood=bag_of_words (BagOfWordsLikelihood, for word_counts data) does not fit"),
    (
        "objective=free_bits prior=vmf",
        "objective FreeBitsELBO needs a closed-form per-dimension KL, which latent family Von",
    ),
    (
        "objective=free_bits prior=vamp",
        "objective FreeBitsELBO needs a closed-form per-dimension KL, which latent family Vamp",
    ),
    ("objective.schedule=sawtooth", "objective.schedule='sawtooth': expected one of constant, linear, cyclic"),
    ("experiment=vmf_text_ptb data=mnist", "experiment=vmf_text_ptb is the protocol for data=ptb, not data=mnist"),
    ("prior=vamp prior.components=0", "prior.components=0: the VampPrior needs at least one pseudo-input"),
    ("prior=vmf prior.kappa=0", "prior.kappa=0"),
    ("prior=vmf prior.kappa=-2", "a fixed concentration must be > 0"),
    ("grad_clip=-1", "grad_clip=-1: the gradient-norm limit must be a number > 0"),
    ("steps_per_call=0", "steps_per_call=0: must be a positive integer"),
    ("compile=maybe", "compile=maybe: expected true, false or auto"),
    ("+trainer.gradient_clip_val=0.5", "use grad_clip=0.5 instead"),
    ("+trainer.accumulate_grad_batches=4", "raise data.module.batch_size instead"),
]


@pytest.mark.parametrize(("override", "message"), BAD_INPUT, ids=[o for o, _ in BAD_INPUT])
def test_bad_input_fails_before_training_with_one_line(tmp_path, monkeypatch, capsys, override, message):
    """In-process through the CLI's own entry function: exit code 2, one line, no traceback."""
    code, err = cli_in_process(
        [*FAST, *override.split(), f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, monkeypatch, capsys
    )
    assert code == 2, err
    (line,) = [line for line in err.splitlines() if line.startswith("error: ")]  # one line, no traceback
    assert message in line and "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(
    ("override", "messages"),
    [
        ("latnet=5", ["Key 'latnet' is not in struct"]),
        ("trainer.max_epoch=3", ["Key 'max_epoch' is not in struct", "did you mean trainer.max_epochs?"]),
        ("trainer=tpu", ["Available options in 'trainer'"]),
        ("experiment=vmf_text", ["Could not find 'experiment/vmf_text'", "vmf_text_ptb"]),
    ],
)
def test_unknown_keys_and_options_name_the_valid_ones(tmp_path, monkeypatch, capsys, override, messages):
    code, err = cli_in_process([*FAST, override, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, monkeypatch, capsys)
    assert code == 1
    assert all(m in err for m in messages), err
    assert "Traceback" not in err


@pytest.mark.slow
def test_bad_input_exit_code_and_message_through_a_real_process(tmp_path):
    result = run_cli([*FAST, "prior=vamp", "data=ptb", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "error: prior=vamp (VampPriorLatent) needs pseudo-inputs" in result.stderr
    assert "Traceback" not in result.stderr
    assert "needs pseudo-inputs" in json.loads((tmp_path / "run" / "failure.json").read_text())["error"]


def _truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_torn_last_checkpoint_is_named_and_the_run_resumes_from_the_newest_good_one(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    args = [*FAST, "trainer.max_epochs=2", f"hydra.run.dir={run}"]
    assert cli_in_process(args, tmp_path, monkeypatch, capsys)[0] == 0
    (run / "metrics.json").unlink()  # as if killed after its last checkpoint
    _truncate(run / "checkpoints" / "last.ckpt")  # as a kill during its write or a full disk leaves it
    code, err = cli_in_process(args, tmp_path, monkeypatch, capsys)
    assert code == 0, err
    assert "checkpoints/last.ckpt is unreadable (truncated or corrupt" in err
    assert "resuming from checkpoints/best.ckpt" in err and "Traceback" not in err
    assert read_metrics(run)["test/nll"] > 0


def test_no_loadable_checkpoint_stops_with_the_remedy(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    args = [*FAST, "trainer.max_epochs=1", f"hydra.run.dir={run}"]
    assert cli_in_process(args, tmp_path, monkeypatch, capsys)[0] == 0
    (run / "metrics.json").unlink()
    for checkpoint in (run / "checkpoints").glob("*.ckpt"):
        _truncate(checkpoint)
    code, err = cli_in_process(args, tmp_path, monkeypatch, capsys)
    assert code == 2
    assert "error: no loadable checkpoint in" in err and "resume=false" in err
    assert "Traceback" not in err
