"""The density-gap comparison through the real command line: experiment=dg_ptb, its baselines,
the hole metrics and figures in the run folder, and the report's table."""

from __future__ import annotations

import csv
import json

import pytest
from omegaconf import OmegaConf

from tests.conftest import cli_in_process, compose_config, read_metrics
from tests.test_text_cli import SHORT_SAMPLES, SLICE, TINY_LSTM, needs_text_data
from vae_lab.report import report


@pytest.mark.parametrize(
    "overrides, objective, prior_target, extra",
    [
        ([], "ELBO", "GaussianLatent", {}),
        (["objective=density_gap"], "DensityGapELBO", "GaussianLatent", {"objective.aggregate": 32}),
        (["objective=density_gap", "prior=vmf"], "DensityGapELBO", "VonMisesFisherLatent", {"prior.kappa": 13}),
        (["objective=free_bits"], "FreeBitsELBO", "GaussianLatent", {"objective.mode": "example"}),
        (["prior=bn_gauss"], "ELBO", "BatchNormGaussianLatent", {"prior.gamma": 0.7}),
        (["prior=delta_gauss"], "ELBO", "DeltaGaussianLatent", {"prior.delta": 0.15}),
        (["decoder.skip_z=true"], "ELBO", "GaussianLatent", {"likelihood.in_features": 256 + 32}),
    ],
)
def test_dg_ptb_sets_the_papers_protocol_for_every_baseline(tmp_path, overrides, objective, prior_target, extra):
    cfg = compose_config(["experiment=dg_ptb", *overrides], tmp_path)
    assert cfg.objective._target_.endswith(objective) and cfg.prior._target_.endswith(prior_target)
    assert (cfg.latent, cfg.data.module.batch_size, cfg.optimizer.lr, cfg.grad_clip) == (32, 32, 0.5, 5.0)
    assert (cfg.encoder.embedding, cfg.encoder.hidden, cfg.decoder.hidden) == (256, 256, 256)
    assert cfg.callbacks.lr_halving.min_epochs == 15 and cfg.report == "density_gap"
    for key, value in extra.items():
        assert OmegaConf.select(cfg, key) == value, key


@needs_text_data
@pytest.mark.slow
def test_density_gap_runs_leave_hole_metrics_figures_and_the_papers_table(tmp_path, monkeypatch, capsys):
    common = ["experiment=dg_ptb", *SLICE, *TINY_LSTM, *SHORT_SAMPLES, "trainer.max_epochs=1"]
    common += ["eval.iw_samples_test=3", "eval.hole_samples=2000", "trainer.log_every_n_steps=1", "steps_per_call=1"]
    runs = {"dg": ["objective=density_gap"], "dg_vmf": ["objective=density_gap", "prior=vmf"]}
    for name, overrides in runs.items():
        args = [*common, *overrides, f"hydra.run.dir={tmp_path / 'sweep' / name}"]
        assert cli_in_process(args, tmp_path, monkeypatch, capsys)[0] == 0
    gauss, sphere = tmp_path / "sweep" / "dg", tmp_path / "sweep" / "dg_vmf"

    metrics = read_metrics(gauss)
    for name in ("test/kl_prior_to_aggregate", "test/kl_aggregate_to_prior", "test/cu_0.03", "test/mi"):
        assert name in metrics, name
    assert 0 <= metrics["test/cu_0.03"] <= 4
    with open(gauss / "csv" / "metrics.csv") as f:
        logged = [row["train/density_gap"] for row in csv.DictReader(f) if row.get("train/density_gap")]
    assert logged and all(float(v) == float(v) for v in logged)  # logged every step, never NaN
    statistics = json.loads((gauss / "latent_space.json").read_text())
    assert len(statistics["kl_prior_to_aggregate_per_dim"]) == 4 and statistics["not_applicable"] is None
    for figure in ("latent_pca.png", "latent_kl_per_dim.png"):
        assert (gauss / "media" / figure).stat().st_size > 1000, figure

    sphere_metrics = read_metrics(sphere)
    assert "test/kl_prior_to_aggregate" in sphere_metrics and "test/cu_0.03" not in sphere_metrics
    assert "per-dimension marginals" in json.loads((sphere / "latent_space.json").read_text())["not_applicable"]
    assert (sphere / "media" / "latent_pca.png").exists() and not (sphere / "media" / "latent_kl_per_dim.png").exists()

    markdown = report([tmp_path / "sweep"])
    rows = {line.split(" | ")[0].strip("| "): line for line in markdown.splitlines() if line.startswith("| DG")}
    assert set(rows) == {"DG-VAE (|b| 32)", "DG-vMF (|b| 32)"}
    assert " n/a " in rows["DG-vMF (|b| 32)"] and " n/a " not in rows["DG-VAE (|b| 32)"]
