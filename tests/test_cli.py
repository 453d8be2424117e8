"""The real command line: in subprocesses as a user runs it (slow), and in-process through its entry function."""

from __future__ import annotations

import json

import pytest

import vae_lab
from tests.conftest import NO_FIGURES, assert_same_training, cli_in_process, needs_real_data, read_metrics, run_cli

# Few importance and prior samples (the hole metrics have their own tests), media every epoch.
SMALL = ["eval.iw_samples_val=5", "eval.iw_samples_test=50", "eval.hole_samples=2000"]
SMALL += ["callbacks.media.every_n_epochs=1"]


@needs_real_data
@pytest.mark.slow
def test_train_end_to_end_on_a_slice_of_real_mnist(tmp_path):
    run_dir = tmp_path / "run"
    args = ["data.module.limit_train=2000", "data.module.limit_valid=300", "data.module.limit_test=300"]
    run_cli([*args, "trainer.max_epochs=2", "warmup=2", *SMALL, f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    metrics = read_metrics(run_dir)
    for name in (
        "val/neg_elbo",
        "val/nll",
        "test/neg_elbo",
        "test/nll",
        "test/recon",
        "test/kl",
        "test/active_units",
    ):
        assert name in metrics
    assert 60 < metrics["test/nll"] < 550  # nats on 784 binary pixels: better than uniform (543)
    assert metrics["test/nll"] <= metrics["test/neg_elbo"] + 1e-3  # the IW bound is tighter
    assert (run_dir / ".hydra" / "config.yaml").exists()  # the composed config
    assert (run_dir / "checkpoints" / "best.ckpt").exists() and (run_dir / "checkpoints" / "last.ckpt").exists()
    assert (run_dir / "csv" / "metrics.csv").exists()
    assert (run_dir / "media" / "samples_test.png").exists()
    assert (run_dir / "media" / "reconstructions_test.png").exists()
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["checkpoint"].endswith("best.ckpt") and summary["epochs"] == 2


@pytest.mark.slow
def test_multirun_writes_one_run_per_job(tmp_path, monkeypatch, capsys):
    args = ["--multirun", "prior=gauss", "latent=2,3", "data=synthetic", "trainer.max_epochs=1", *SMALL, *NO_FIGURES]
    code, out = cli_in_process(args, tmp_path, monkeypatch, capsys)
    jobs = sorted(tmp_path.glob("multirun/*/*/[0-9]*"))
    assert code == 0 and [j.name for j in jobs] == ["0", "1"], out[-2000:]
    for job, latent in zip(jobs, (2, 3), strict=True):
        assert "latent: " + str(latent) in (job / ".hydra" / "config.yaml").read_text()
        assert vae_lab.load(job / "checkpoints" / "best.ckpt").latent.latent_dim == latent  # its own model
        assert 0 <= read_metrics(job)["test/active_units"] <= latent


def test_unknown_config_option_lists_the_valid_ones(tmp_path, monkeypatch, capsys):
    code, err = cli_in_process(["prior=nope"], tmp_path, monkeypatch, capsys)
    assert code != 0
    assert "Could not find 'prior/nope'" in err
    assert "Available options in 'prior'" in err and "gauss" in err


def test_missing_data_file_gives_a_clear_error(tmp_path, monkeypatch, capsys):
    code, err = cli_in_process(["data=mnist", f"data.root={tmp_path / 'empty'}"], tmp_path, monkeypatch, capsys)
    assert code == 2
    assert "mnist/train-images-idx3-ubyte.gz missing" in err
    assert "VAE_LAB_DATA" in err and "network" in err
    assert "Traceback" not in err


@needs_real_data
@pytest.mark.slow
def test_ddp_cpu_training_and_evaluation_equal_one_process(tmp_path, monkeypatch, capsys):
    """The batch size is the global one and every process uses its share of the single-process
    noise (dynamic binarisation, ε): 200 steps on two processes, in groups of 3 per trip through
    Lightning's loop (steps_per_call; one process: the default 10), end at one process's weights
    and test metrics. Odd evaluation sizes: 7 batches of 70, dealt unevenly to the 2 processes."""
    common = [
        "data=mnist",
        *SMALL,
        *NO_FIGURES,
        "eval.iw_samples_val=4",
        "eval.iw_samples_test=20",
    ]
    common += ["data.module.limit_train=1000", "data.module.batch_size=20", "trainer.max_epochs=4"]
    common += ["data.module.limit_valid=490", "data.module.limit_test=490", "data.module.eval_batch_size=70"]
    assert cli_in_process([*common, f"hydra.run.dir={tmp_path / 'one'}"], tmp_path, monkeypatch, capsys)[0] == 0
    ddp = [*common, "trainer=ddp_cpu", "steps_per_call=3", f"hydra.run.dir={tmp_path / 'ddp'}"]
    ddp_run = run_cli(ddp, cwd=tmp_path)
    assert "MEMBER: 2/2" in ddp_run.stdout + ddp_run.stderr  # really two processes
    assert_same_training(tmp_path / "one", tmp_path / "ddp", steps=200)
