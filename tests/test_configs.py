"""Every option of every config group composes and runs one batch through Lightning (fast_dev_run)."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import compose_config, data_root
from vae_lab.config import CONF_DIR
from vae_lab.train import run

GROUPS = ["data", "encoder", "prior", "decoder", "optimizer", "trainer", "logger", "callbacks", "experiment"]
GROUPS += ["debug", "hparams_search"]
# Options that need hardware this machine may lack; they are composed but only run when present.
NEEDS_GPU = {("trainer", "gpu"), ("trainer", "ddp"), ("trainer", "ddp_slurm")}
# Multi-process options are run through the real CLI in test_cli.py (they re-launch the script).
RUN_ELSEWHERE = {("trainer", "ddp_cpu")}
REAL_DATA = {"mnist", "mnist_static", "frey", "fashion_mnist", "ptb", "20ng"}
# Datasets whose files are not in the shared data (docs/text.md); composed, not run.
NOT_IN_SHARED_DATA = {("data", "yahoo"), ("data", "yelp")}
# Modality-specific parts run on data of their modality (an LSTM reads token ids, not pixels).
DATA_FOR = {("encoder", "lstm"): "ptb", ("decoder", "lstm"): "ptb", ("encoder", "bow_mlp"): "20ng"}


def options():
    for group in GROUPS:
        for path in sorted((CONF_DIR / group).glob("*.yaml")):
            yield group, path.stem


def overrides_for(group: str, option: str) -> list[str]:
    base = {"data": DATA_FOR.get((group, option), "synthetic"), "debug": "fast_dev_run"}
    base[group] = option
    out = [f"{g}={o}" for g, o in base.items()]
    if group == "debug" and option != "fast_dev_run":
        out.append("+trainer.fast_dev_run=true")
    if group == "experiment":
        out = [f"experiment={option}", "debug=fast_dev_run"]
    return out


@pytest.mark.parametrize(("group", "option"), list(options()), ids=lambda v: str(v))
def test_option_composes_and_runs_fast_dev_run(group, option, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    if (group == "data" and option in REAL_DATA) or group == "experiment" or (group, option) in DATA_FOR:
        if data_root() is None:
            pytest.skip("real data not available")
    cfg = compose_config(overrides_for(group, option), tmp_path)
    assert cfg.get(group) is not None or group in ("experiment", "debug", "hparams_search")
    if (group, option) in NEEDS_GPU and not torch.cuda.is_available():
        pytest.skip("composes; running needs a GPU")
    if (group, option) in NOT_IN_SHARED_DATA:
        pytest.skip("composes; its data files are not in the shared data")
    if (group, option) in RUN_ELSEWHERE:
        pytest.skip("composes; run through the CLI in test_cli.py")
    metrics = run(cfg)
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values()), metrics
    assert {"val/neg_elbo", "test/neg_elbo", "test/nll"} <= set(metrics)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["metrics"] == pytest.approx(metrics)


@pytest.mark.parametrize(("data", "samples"), [("mnist", 5000), ("frey", 5000), ("ptb", 500), ("20ng", 500)])
def test_default_test_importance_samples_follow_the_papers(tmp_path, data, samples):
    cfg = compose_config([f"data={data}"], tmp_path)
    assert cfg.model.iw_samples_test == samples
    assert compose_config([f"data={data}", "eval.iw_samples_test=9"], tmp_path).model.iw_samples_test == 9
