"""A finished run, re-scored: `vae_lab.evaluate`, loading from the checkpoint alone, and the report."""

from __future__ import annotations

import json
import sys

import lightning as L
import pytest

import vae_lab
from tests.conftest import NO_FIGURES, read_metrics
from vae_lab.evaluate import main as evaluate_main
from vae_lab.model import VAEModule
from vae_lab.report import report
from vae_lab.restore import read_checkpoint
from vae_lab.run_folder import RunFolder
from vae_lab.train import cli

# 500 test points: enough for "more importance samples, tighter bound" to hold on average.
TINY = ["data=synthetic", "trainer.max_epochs=2", "eval.iw_samples_val=0", "eval.iw_samples_test=2", *NO_FIGURES]
TINY += ["data.module.limit_train=1000", "data.module.limit_test=500", "callbacks.media.every_n_epochs=100"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evaluate") / "run"
    argv = sys.argv
    try:
        assert cli([*TINY, f"hydra.run.dir={folder}"]) == 0
    finally:
        sys.argv = argv
    return folder


def test_checkpoint_carries_the_composed_config(finished_run):
    checkpoint = read_checkpoint(finished_run / "checkpoints" / "best.ckpt")
    config = checkpoint["vae_lab_config"]
    assert config["data"]["name"] == "synthetic" and config["model"]["_target_"] == "vae_lab.model.VAEModule"
    assert config["eval"]["iw_samples_test"] == 2


def test_model_loaded_from_the_checkpoint_alone_gives_identical_test_metrics(finished_run):
    ckpt = finished_run / "checkpoints" / "best.ckpt"
    model = vae_lab.load(ckpt)
    assert not model.training
    same = VAEModule.load_from_checkpoint(ckpt)
    assert all((a == b).all() for a, b in zip(model.state_dict().values(), same.state_dict().values(), strict=True))
    cfg = RunFolder(finished_run).config()
    from hydra.utils import instantiate

    datamodule = instantiate(cfg.data.module)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    metrics = {k: float(v) for k, v in trainer.test(model, datamodule=datamodule, verbose=False)[0].items()}
    trained = read_metrics(finished_run)
    assert metrics == {k: v for k, v in trained.items() if k.startswith("test/")}


def test_evaluate_with_more_samples_is_tighter_stored_beside_and_picked_by_the_report(finished_run, capsys):
    before = read_metrics(finished_run)
    assert evaluate_main([str(finished_run), "eval.iw_samples_test=64"]) == 0
    summary = json.loads((finished_run / "metrics.json").read_text())
    assert summary["metrics"] == before  # the training-time metrics stay as they were
    ((key, entry),) = summary["evaluations"].items()
    assert "iw_samples_test=64" in key and entry["settings"]["checkpoint"] == "best"
    assert entry["metrics"]["test/nll"] < before["test/nll"]  # more samples: a tighter bound
    assert entry["metrics"]["test/neg_elbo"] == before["test/neg_elbo"]  # same weights, same ELBO draws
    best = RunFolder(finished_run).most_precise_evaluation("test/nll")
    assert best.importance_samples == 64 and best.metrics == entry["metrics"]
    markdown = report([finished_run.parent])
    assert f"{entry['metrics']['test/nll']:.2f}" in markdown
    assert "S=64 importance samples, by vae_lab.evaluate (1 job)" in markdown


def test_skip_done_keeps_a_stored_evaluation_and_runs_new_settings(finished_run, capsys):
    """A re-launched script resumes: settings scored before are not scored again, others are."""
    assert evaluate_main([str(finished_run), "eval.iw_samples_test=8"]) == 0
    stored = json.loads((finished_run / "metrics.json").read_text())["evaluations"]
    assert evaluate_main([str(finished_run), "eval.iw_samples_test=8", "--skip-done"]) == 0
    assert "already evaluated with checkpoint=best" in capsys.readouterr().out
    assert json.loads((finished_run / "metrics.json").read_text())["evaluations"] == stored  # times included
    assert evaluate_main([str(finished_run), "eval.iw_samples_test=4", "--skip-done"]) == 0
    keys = json.loads((finished_run / "metrics.json").read_text())["evaluations"]
    assert len(keys) == len(stored) + 1 and any("iw_samples_test=4," in k for k in keys)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trainer.max_epochs=3"], "trainer.max_epochs: only evaluation settings can change"),
        (["eval.iw_samples_test=-1"], "eval.iw_samples_test=-1: must be an integer >= 0"),
        (["eval.iw_samples_test"], "expected KEY=VALUE"),
        (["eval.compile=maybe"], "eval.compile=maybe: expected true, false or auto"),
    ],
)
def test_evaluate_refuses_bad_settings_in_one_line(finished_run, capsys, args, message):
    before = (finished_run / "metrics.json").read_text()
    assert evaluate_main([str(finished_run), *args]) == 2
    err = capsys.readouterr().err
    assert f"error: {message}" in err or message in err
    assert "Traceback" not in err and (finished_run / "metrics.json").read_text() == before


def test_evaluate_refuses_an_unfinished_folder(tmp_path, capsys):
    assert evaluate_main([str(tmp_path)]) == 2
    assert "no finished run here" in capsys.readouterr().err
