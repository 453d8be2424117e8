"""`vae_lab.report` on synthetic multirun folders: exact tables, failed/unfinished jobs, merging."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from vae_lab.report import main, report

PRIORS = {
    "gauss": {"_target_": "vae_lab.latents.gaussian.GaussianLatent", "latent_dim": 0},
    "vamp": {"_target_": "vae_lab.latents.vamp.VampPriorLatent", "latent_dim": 0, "components": 500},
}


def make_job(folder: Path, num: int, data: str, prior: str, latent: int, seed=0, metrics=None, failed=False, **arch):
    """A job folder as Hydra and vae_lab.train leave it (only the keys the report reads)."""
    job = folder / str(num)
    (job / ".hydra").mkdir(parents=True)
    prior_cfg = {**PRIORS[prior], "latent_dim": latent}
    if prior == "vamp" and "components" in arch:
        prior_cfg["components"] = arch["components"]
    config = {
        "latent": latent,
        "seed": seed,
        "data": {"name": data, "bits_per_dim": data == "frey"},
        "encoder": {"hidden": arch.get("hidden", 300)},
        "prior": prior_cfg,
    }
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (job / ".hydra" / "overrides.yaml").write_text(
        yaml.safe_dump([f"prior={prior}", f"latent={latent}", f"seed={seed}"])
    )
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps({"metrics": metrics, "checkpoint": None, "epochs": 3, "steps": 9}))
    if failed:
        (job / "failure.json").write_text(json.dumps({"error": "RuntimeError: boom", "traceback": "..."}))
    return job


@pytest.fixture
def mnist_sweep(tmp_path) -> Path:
    sweep = tmp_path / "multirun" / "2026-01-01" / "10-00-00"
    nll = lambda v: {"test/nll": v, "test/neg_elbo": v + 3}  # noqa: E731
    make_job(sweep, 0, "mnist", "gauss", 10, seed=0, metrics=nll(90.0))
    make_job(sweep, 1, "mnist", "gauss", 10, seed=1, metrics=nll(92.0))
    make_job(sweep, 2, "mnist", "vamp", 10, seed=0, metrics=nll(88.5))
    make_job(sweep, 3, "mnist", "vamp", 10, seed=1, failed=True)
    make_job(sweep, 4, "mnist", "gauss", 40, seed=0, metrics=nll(85.25))
    make_job(sweep, 5, "mnist", "vamp", 40, seed=0)  # started, never finished
    (sweep / "multirun.yaml").write_text("{}\n")  # Hydra's sweep record is not a job
    return sweep


def test_table_has_paper_layout_seeds_and_marks_failed_and_unfinished_jobs(mnist_sweep):
    markdown = report([mnist_sweep])
    assert markdown == (
        "### mnist: test NLL (nats), mean ± std over seeds\n"
        "\n"
        "| latent | standard | VampPrior |\n"
        "|---:|---:|---:|\n"
        "| 10 | 91.00 ± 1.41 (2 seeds) | 88.50 (1 failed) |\n"
        "| 40 | 85.25 | unfinished |\n"
        "\n"
        "6 jobs: 4 finished, 1 failed, 1 unfinished.\n"
    )
    assert (mnist_sweep / "report.md").read_text() == markdown
    assert (mnist_sweep / "report.png").stat().st_size > 0
    rows = list(csv.DictReader((mnist_sweep / "report.csv").open()))
    assert [(r["latent"], r["prior"], r["mean"], r["seeds"], r["failed"]) for r in rows] == [
        ("10", "gauss", "91.0", "2", "0"),
        ("10", "vamp", "88.5", "1", "1"),
        ("40", "gauss", "85.25", "1", "0"),
        ("40", "vamp", "", "0", "0"),
    ]


def test_reference_columns_and_merged_folders_with_an_architecture_grid(mnist_sweep, tmp_path):
    frey = tmp_path / "multirun" / "2026-01-02" / "09-00-00"
    make_job(frey, 0, "frey", "gauss", 40, metrics={"test/nll": 1800.0, "test/bpd": 4.6})
    make_job(frey, 1, "frey", "vamp", 40, metrics={"test/nll": 1780.0, "test/bpd": 4.5512}, components=100)
    make_job(frey, 2, "frey", "vamp", 40, metrics={"test/nll": 1790.0, "test/bpd": 4.5678}, components=500)
    out = tmp_path / "tables"
    main([str(mnist_sweep), str(frey), "--reference", "--out", str(out)])
    markdown = (out / "report.md").read_text()
    # K varies among the Frey jobs, so it becomes a row key; the standard prior has no K and so
    # fills every K row of its latent size.
    assert (
        "### frey: test NLL (bits/dim), mean ± std over seeds\n"
        "\n"
        "| latent | K | standard | reference | VampPrior | reference |\n"
        "|---:|---:|---:|---:|---:|---:|\n"
        "| 40 | 100 | 4.600 | 4.617 | 4.551 | 4.528 |\n"
        "| 40 | 500 | 4.600 | 4.620 | 4.568 | 4.532 |\n"
    ) in markdown
    assert "| 10 | 91.00 ± 1.41 (2 seeds) | 93.92 | 88.50 (1 failed) | 92.30 |" in markdown
    assert "9 jobs: 7 finished, 1 failed, 1 unfinished." in markdown


def test_log_likelihood_histograms_are_overlaid_when_runs_saved_them(mnist_sweep):
    for num in (0, 2):
        media = mnist_sweep / str(num) / "media"
        media.mkdir()
        np.save(media / "test_log_likelihoods.npy", np.random.default_rng(num).normal(-90, 5, 200))
    report([mnist_sweep])
    assert (mnist_sweep / "log_likelihoods.png").stat().st_size > 0


def test_cli_refuses_a_folder_without_jobs(tmp_path, capsys):
    with pytest.raises(SystemExit, match="no job folders"):
        main([str(tmp_path)])
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing")])
    assert "not a folder" in capsys.readouterr().err


def make_text_job(folder: Path, num: int, data: str, kappa=None, metrics=None, failed=False):
    job = folder / str(num)
    (job / ".hydra").mkdir(parents=True)
    target = "vae_lab.latents.vmf.VonMisesFisherLatent" if kappa else "vae_lab.latents.gaussian.GaussianLatent"
    config = {
        "latent": 50,
        "seed": 0,
        "data": {"name": data, "bits_per_dim": False, "metrics": {"_target_": "vae_lab.metrics.text.text_metrics"}},
        "prior": {"_target_": target, **({"kappa": kappa} if kappa else {})},
    }
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps({"metrics": metrics, "epochs": 2, "steps": 40}))
    if failed:
        (job / "failure.json").write_text(json.dumps({"error": "RuntimeError: boom"}))


def test_text_jobs_get_the_text_metrics_table(tmp_path):
    sweep = tmp_path / "text"
    m = {"test/ppl_elbo": 120.5, "test/ppl": 110.25, "test/nll": 90.0, "test/kl": 3.5, "test/mi": 1.25}
    make_text_job(sweep, 0, "ptb", metrics={**m, "test/active_units": 7.0})
    make_text_job(sweep, 1, "ptb", kappa=80, failed=True)
    markdown = report([sweep])
    assert "| ptb | Gaussian | 0 | 2 ep / 40 steps | 120.50 | 110.25 | 90.00 | 3.50 | 1.25 | 7.00 | 98 |" in markdown
    assert "| ptb | VonMisesFisher κ=80 | 0 | failed | – | – | – | – | – | – | 98 |" in markdown
    assert (sweep / "report_text.csv").exists() and not (sweep / "report.csv").exists()
