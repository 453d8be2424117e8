"""`vae_lab.report` on synthetic multirun folders: exact tables, failed/unfinished jobs, merging."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from vae_lab.report import main, references, report
from vae_lab.report.jobs import Job, nll_metric
from vae_lab.run_folder import RunFolder

PRIORS = {
    "gauss": {"_target_": "vae_lab.latents.gaussian.GaussianLatent", "latent_dim": 0},
    "vamp": {"_target_": "vae_lab.latents.vamp.VampPriorLatent", "latent_dim": 0, "components": 500},
    "vmf": {"_target_": "vae_lab.latents.vmf.VonMisesFisherLatent", "latent_dim": 0, "kappa": None},
    "power_spherical": {"_target_": "vae_lab.latents.vmf.PowerSphericalLatent", "latent_dim": 0, "kappa": None},
}
LIKELIHOODS = {
    "mnist": "vae_lab.likelihoods.BernoulliLikelihood",
    "frey": "vae_lab.likelihoods.DiscretizedLogisticLikelihood",
}


def make_job(
    folder: Path,
    num: int,
    data: str,
    prior: str,
    latent: int,
    seed=0,
    metrics=None,
    failed=False,
    layout="old",
    likelihood=None,
    iw_samples=100,
    **arch,
):
    """A job folder as Hydra and vae_lab.train leave it (only the keys the report reads).

    ``layout="old"``: the data config says ``bits_per_dim``; ``"new"``: the config names the
    likelihood (``likelihood._target_``, default the dataset's) and the metrics say ``test/bpd``.
    """
    job = folder / str(num)
    (job / ".hydra").mkdir(parents=True)
    prior_cfg = {**PRIORS[prior], "latent_dim": latent}
    for key in ("components", "kappa"):
        if key in arch:
            prior_cfg[key] = arch[key]
    config = {
        "latent": latent,
        "seed": seed,
        "data": {"name": data},
        "encoder": {"hidden": arch.get("hidden", 300)},
        "prior": prior_cfg,
    }
    if layout == "old":
        config["data"]["bits_per_dim"] = data == "frey"
    else:
        config["likelihood"] = {"_target_": likelihood or LIKELIHOODS[data]}
    if iw_samples is not None:
        config["eval"] = {"iw_samples_val": 20, "iw_samples_test": iw_samples, "iw_chunk_size": 32}
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (job / ".hydra" / "overrides.yaml").write_text(
        yaml.safe_dump([f"prior={prior}", f"latent={latent}", f"seed={seed}"])
    )
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps({"metrics": metrics, "checkpoint": None, "epochs": 3, "steps": 9}))
    if failed:
        (job / "failure.json").write_text(json.dumps({"error": "RuntimeError: boom", "traceback": "..."}))
    return job


def _png_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


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
        "NLL from: S=100 importance samples, at the end of training (4 jobs).\n"
        "\n"
        "6 jobs: 4 finished, 1 failed, 1 unfinished.\n"
    )
    assert (mnist_sweep / "report.md").read_text() == markdown
    assert _png_size(mnist_sweep / "report.png") == (600, 456)  # one 5 x 3.8 inch panel: one dataset
    rows = list(csv.DictReader((mnist_sweep / "report.csv").open()))
    assert [(r["latent"], r["prior"], r["mean"], r["seeds"], r["failed"]) for r in rows] == [
        ("10", "gauss", "91.0", "2", "0"),
        ("10", "vamp", "88.5", "1", "1"),
        ("40", "gauss", "85.25", "1", "0"),
        ("40", "vamp", "", "0", "0"),
    ]


def test_reference_columns_and_merged_folders_with_an_architecture_grid(mnist_sweep, tmp_path):
    frey = tmp_path / "multirun" / "2026-01-02" / "09-00-00"
    # Newer configs name the likelihood instead of data.bits_per_dim; their metrics hold test/bpd.
    new = {"layout": "new"}
    make_job(frey, 0, "frey", "gauss", 40, metrics={"test/nll": 1800.0, "test/bpd": 4.6}, **new)
    make_job(frey, 1, "frey", "vamp", 40, metrics={"test/nll": 1780.0, "test/bpd": 4.5512}, components=100, **new)
    make_job(frey, 2, "frey", "vamp", 40, metrics={"test/nll": 1790.0, "test/bpd": 4.5678}, components=500, **new)
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


def test_the_most_precise_evaluation_fills_the_table_and_the_note_says_which(tmp_path):
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, "mnist", "gauss", 10, seed=0, metrics={"test/nll": 90.0})
    rerun = RunFolder(make_job(sweep, 1, "mnist", "gauss", 10, seed=1, metrics={"test/nll": 92.0}))
    rerun.add_evaluation({"iw_samples_test": 5000}, {"test/nll": 89.0}, checkpoint="best")
    rerun.add_evaluation({"iw_samples_test": 10}, {"test/nll": 50.0}, checkpoint="best")  # later, less precise
    vamp = RunFolder(make_job(sweep, 2, "mnist", "vamp", 10, seed=0, metrics={"test/nll": 88.0}))
    vamp.add_evaluation({"iw_samples_test": 5000}, {"test/nll": 87.5}, checkpoint="best")
    vamp.add_evaluation({"iw_samples_test": 20000}, {"test/kl": 9.0}, checkpoint="best")  # more samples, no NLL
    make_job(sweep, 3, "mnist", "vamp", 10, seed=1, metrics={"test/neg_elbo": 95.0}, iw_samples=0)
    assert report([sweep]) == (
        "### mnist: test NLL (nats), mean ± std over seeds\n"
        "\n"
        "| latent | standard | VampPrior |\n"
        "|---:|---:|---:|\n"
        "| 10 | 89.50 ± 0.71 (2 seeds) | 87.50 (1 not measured) |\n"
        "\n"
        "NLL from: S=5000 importance samples, by vae_lab.evaluate (2 jobs);"
        " S=100 importance samples, at the end of training (1 job).\n"
        "\n"
        "4 jobs: 4 finished, 0 failed, 0 unfinished.\n"
    )
    rows = list(csv.DictReader((sweep / "report.csv").open()))
    assert [(r["prior"], r["mean"], r["not_measured"], r["evaluation"]) for r in rows] == [
        (
            "gauss",
            "89.5",
            "0",
            "S=100 importance samples, at the end of training; S=5000 importance samples, by vae_lab.evaluate",
        ),
        ("vamp", "87.5", "1", "S=5000 importance samples, by vae_lab.evaluate"),
    ]


class EightBitLikelihood:  # what get_class finds for likelihood._target_ in the cases below
    reports_bits_per_dim = True


class RealValuedLikelihood:
    reports_bits_per_dim = False


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ({"data": "frey"}, "test/bpd"),  # old config: data.bits_per_dim
        ({"data": "mnist", "metrics": {"test/nll": 90.0}}, "test/nll"),
        ({"data": "mnist", "metrics": {"test/nll": 90.0, "test/bpd": 0.2}}, "test/bpd"),  # metrics come first
        ({"layout": "new", "data": "frey", "metrics": {"test/nll": 1800.0, "test/bpd": 4.6}}, "test/bpd"),
        ({"layout": "new", "data": "frey", "likelihood": f"{__name__}.EightBitLikelihood"}, "test/bpd"),
        ({"layout": "new", "data": "frey", "likelihood": f"{__name__}.RealValuedLikelihood"}, "test/nll"),
        ({"layout": "new", "data": "frey", "likelihood": "vae_lab.no_such_module.Likelihood"}, "test/nll"),
    ],
)
def test_nll_in_bits_per_dim_from_the_metrics_else_the_config_else_the_likelihood_class(tmp_path, job, expected):
    folder = make_job(tmp_path, 0, prior="gauss", latent=10, **job)
    assert nll_metric(Job.read(RunFolder(folder))) == expected


def test_prior_columns_are_named_in_one_place_and_a_fixed_kappa_is_its_own_column(tmp_path):
    sweep = tmp_path / "sweep"
    nll = {"test/nll": 90.0}
    make_job(sweep, 0, "mnist", "power_spherical", 10, metrics=nll)
    make_job(sweep, 1, "mnist", "vmf", 10, metrics={"test/nll": 91.0}, kappa=80)
    make_job(sweep, 2, "mnist", "vmf", 10, metrics={"test/nll": 92.0})
    make_job(sweep, 3, "mnist", "gauss", 10, metrics={"test/nll": 93.0})
    markdown = report([sweep])
    assert "| latent | standard | VonMisesFisher | VonMisesFisher κ=80 | PowerSpherical |" in markdown
    assert "| 10 | 93.00 | 92.00 | 91.00 | 90.00 |" in markdown
    rows = list(csv.DictReader((sweep / "report.csv").open()))
    assert [r["prior"] for r in rows] == ["gauss", "vmf", "vmf kappa=80", "power_spherical"]


def test_reference_values_are_data_files_of_the_package():
    vampprior = {
        (r["dataset"], r["metric"], int(r["latent"]), int(r["hidden"]), int(r["components"]), r["prior"]): float(
            r["value"]
        )
        for r in references.load("vampprior.csv")
    }
    expected = {}
    for (data, metric, latent, hidden, k), (standard, vamp) in {
        ("mnist", "test/nll", 10, 300, 500): (93.917, 92.297),
        ("mnist", "test/nll", 40, 300, 500): (89.703, 89.015),
        ("mnist", "test/nll", 100, 300, 500): (90.042, 90.780),
        ("frey", "test/bpd", 10, 300, 500): (4.569, 4.555),
        ("frey", "test/bpd", 40, 300, 500): (4.620, 4.532),
        ("frey", "test/bpd", 100, 300, 500): (4.562, 4.537),
        ("frey", "test/bpd", 40, 600, 500): (4.620, 4.536),
        ("frey", "test/bpd", 40, 300, 1000): (4.617, 4.532),
        ("frey", "test/bpd", 40, 300, 100): (4.617, 4.528),
    }.items():
        expected[data, metric, latent, hidden, k, "gauss"] = standard
        expected[data, metric, latent, hidden, k, "vamp"] = vamp
    assert vampprior == expected
    assert {r["source"] for r in references.load("vampprior.csv")} == {"REFERENCE.md §1"}
    text = {(r["dataset"], r["prior"], r["metric"]): float(r["value"]) for r in references.load("xu_durrett.csv")}
    assert text == {
        ("ptb", "vmf", "test/ppl_elbo"): 98,
        ("20ng", "vmf", "test/ppl_elbo"): 793,
        ("yelp", "vmf", "test/ppl_elbo"): 54,
    }
    assert {r["source"] for r in references.load("xu_durrett.csv")} == {"REFERENCE.md §3"}
    assert references.lookup("vampprior.csv", dataset="frey", latent=40, hidden=600, prior="vamp") == 4.536
    assert references.lookup("vampprior.csv", dataset="mnist", latent=20, prior="vamp") is None
    with pytest.raises(ValueError, match="expected one"):
        references.lookup("vampprior.csv", dataset="frey", latent=40, prior="vamp")


def test_log_likelihood_histograms_are_overlaid_when_runs_saved_them(mnist_sweep):
    for num in (0, 2):
        media = mnist_sweep / str(num) / "media"
        media.mkdir()
        np.save(media / "test_log_likelihoods.npy", np.random.default_rng(num).normal(-90, 5, 200))
    report([mnist_sweep])
    assert _png_size(mnist_sweep / "log_likelihoods.png") == (480, 384)  # one panel: both runs are latent 10


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


def make_dg_job(folder: Path, num: int, objective: str, prior: str, seed=0, metrics=None, failed=False, **settings):
    """A job of experiment=dg_ptb as the report reads it (``report: density_gap`` routes it)."""
    job = folder / str(num)
    (job / ".hydra").mkdir(parents=True)
    targets = {
        "elbo": "vae_lab.objectives.elbo.ELBO",
        "free_bits": "vae_lab.objectives.elbo.FreeBitsELBO",
        "density_gap": "vae_lab.objectives.density_gap.DensityGapELBO",
    }
    objective_cfg = {"_target_": targets[objective], "beta": settings.pop("beta", 1.0), "schedule": "linear"}
    objective_cfg |= {"aggregate": 32} if objective == "density_gap" else {}
    objective_cfg |= {"target": 4.0, "mode": "example"} if objective == "free_bits" else {}
    prior_cfg = {"_target_": "vae_lab.latents.gaussian.GaussianLatent"} | settings.pop("prior_cfg", {})
    config = {
        "latent": 32,
        "seed": seed,
        "report": "density_gap",
        "data": {"name": "ptb", "metrics": {"_target_": "vae_lab.metrics.text.text_metrics"}},
        "prior": prior_cfg,
        "objective": objective_cfg,
        "decoder": {"skip_z": settings.pop("skip_z", False)},
    }
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"objective={objective}", f"prior={prior}"]))
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps({"metrics": metrics, "epochs": 2, "steps": 40}))
        if prior == "vmf":
            (job / "latent_space.json").write_text(json.dumps({"not_applicable": "no per-dimension marginals"}))
    if failed:
        (job / "failure.json").write_text(json.dumps({"error": "RuntimeError: boom"}))


def _dg_metrics(nll, kl, cu=None):
    m = {"test/nll": nll, "test/neg_elbo": nll + 2, "test/recon": nll + 2 - kl, "test/kl": kl, "test/mi": kl / 2}
    m |= {"test/active_units": 32.0, "test/kl_prior_to_aggregate": 0.5}
    return m | ({"test/cu_0.03": cu} if cu is not None else {})


def test_density_gap_jobs_get_the_papers_table_with_model_names_seeds_and_failures(tmp_path):
    sweep = tmp_path / "dg"
    make_dg_job(sweep, 0, "elbo", "gauss", seed=0, metrics=_dg_metrics(100.0, 1.0, cu=32.0))
    make_dg_job(sweep, 1, "elbo", "gauss", seed=1, metrics=_dg_metrics(102.0, 3.0, cu=30.0))
    make_dg_job(sweep, 2, "density_gap", "gauss", metrics=_dg_metrics(105.0, 10.0, cu=32.0))
    make_dg_job(sweep, 3, "free_bits", "gauss", failed=True)
    bn = {"_target_": "vae_lab.latents.batchnorm_gaussian.BatchNormGaussianLatent", "gamma": 0.7}
    make_dg_job(sweep, 4, "elbo", "bn_gauss", prior_cfg=bn, metrics=_dg_metrics(101.0, 6.0, cu=20.0))
    vmf = {"_target_": "vae_lab.latents.vmf.VonMisesFisherLatent", "kappa": 13}
    make_dg_job(sweep, 5, "density_gap", "vmf", prior_cfg=vmf, metrics=_dg_metrics(104.0, 8.0))
    make_dg_job(sweep, 6, "elbo", "gauss", beta=0.2, skip_z=True, metrics=_dg_metrics(103.0, 20.0, cu=25.0))
    markdown = report([sweep])
    assert "ptb: density-gap comparison" in markdown
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    expected = [
        "| BN-VAE (γ 0.7) | 101.00 | 103.00 | 97.00 | 6.00 | 3.00 | 32.0 | 20.0 | 0.50 |",
        "| DG-VAE (|b| 32) | 105.00 | 107.00 | 97.00 | 10.00 | 5.00 | 32.0 | 32.0 | 0.50 |",
        "| DG-vMF (|b| 32) | 104.00 | 106.00 | 98.00 | 8.00 | 4.00 | 32.0 | n/a | 0.50 |",
        "| FB (4) | failed | failed | failed | failed | failed | failed | failed | failed |",
        "| VAE | 101.00 ± 1.41 (2 seeds) | 103.00 ± 1.41 (2 seeds) | 101.00 ± 0.00 (2 seeds) | 2.00 ± 1.41 (2 seeds) "
        "| 1.00 ± 0.71 (2 seeds) | 32.0 ± 0.0 (2 seeds) | 31.0 ± 1.4 (2 seeds) | 0.50 ± 0.00 (2 seeds) |",
        "| β-VAE (0.2) + skip-VAE | 103.00 | 105.00 | 85.00 | 20.00 | 10.00 | 32.0 | 25.0 | 0.50 |",
    ]
    for line in expected:
        assert line in lines, f"{line}\nnot in\n" + "\n".join(lines)
    assert (sweep / "report_density_gap.csv").exists() and not (sweep / "report_text.csv").exists()


def test_collapse_depth_jobs_give_the_ae_vs_vae_table_by_depth(tmp_path):
    sweep = tmp_path / "depth"
    targets = {"ae": "vae_lab.objectives.autoencoder.Autoencoder", "vae": "vae_lab.objectives.elbo.ELBO"}
    values = {("ae", 1): 0.020, ("vae", 1): 0.030, ("ae", 4): 0.018, ("vae", 4): 0.032}
    for num, ((objective, depth), mse) in enumerate(values.items()):
        job = sweep / str(num)
        (job / ".hydra").mkdir(parents=True)
        config = {
            "latent": 20,
            "seed": 0,
            "report": "collapse_depth",
            "data": {"name": "fashion_mnist_continuous"},
            "prior": {"_target_": "vae_lab.latents.gaussian.GaussianLatent"},
            "objective": {"_target_": targets[objective]},
            "decoder": {"_target_": "vae_lab.nets.mlp.MLP", "depth": depth},
        }
        (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
        metrics = {"train_set/mse": mse - 0.001, "test/mse": mse, "test/recon": -100.0, "test/active_units": 20.0}
        if objective == "vae":
            metrics |= {"test/kl": 10.0 + depth, "test/collapsed_dims": float(depth), "test/gamma": mse}
        (job / "metrics.json").write_text(json.dumps({"metrics": metrics, "epochs": 5, "steps": 500}))
    markdown = report([sweep])
    assert "fashion_mnist_continuous, MLP nets" in markdown
    assert "| 1 | 0.0190 | 0.0290 | 0.0200 | 0.0300 | 11.00 | 20.0 | 1.0 | 0.0300 |" in markdown
    assert "| 4 | 0.0170 | 0.0310 | 0.0180 | 0.0320 | 14.00 | 20.0 | 4.0 | 0.0320 |" in markdown
    assert (sweep / "report_collapse.png").exists() and (sweep / "report_collapse.csv").exists()


def test_hyperspherical_jobs_give_the_papers_two_tables_with_its_values(tmp_path):
    sweep = tmp_path / "svae"
    targets = {"gauss": "vae_lab.latents.gaussian.GaussianLatent", "vmf": "vae_lab.latents.vmf.VonMisesFisherLatent"}
    num = 0
    for prior in ("gauss", "vmf"):
        for d in (2, 10):
            for seed in (0, 1):
                job = sweep / str(num)
                num += 1
                (job / ".hydra").mkdir(parents=True)
                config = {
                    "latent": d,
                    "seed": seed,
                    "report": "svae",
                    "d_convention": "sphere",
                    "data": {"name": "mnist"},
                    "prior": {"_target_": targets[prior]},
                }
                (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
                nll = 100.0 + d + (prior == "vmf") + 2 * seed  # seeds 0, 1: mean +1, std √2
                metrics = {"test/nll": nll, "test/neg_elbo": nll + 4, "test/recon": nll - 10, "test/kl": 14.0}
                summary = {"metrics": metrics, "epochs": 50, "steps": 40000, "eval": {"iw_samples_test": 500}}
                (job / "metrics.json").write_text(json.dumps(summary))
    markdown = report([sweep], reference=True)
    assert "mnist, S-VAE on S^d in R^(d+1): test NLL = −LL (nats)" in markdown
    # d, N-VAE NLL, paper, S-VAE NLL, paper (REFERENCE.md §2: −135.73, −132.50; −93.84, −93.16)
    assert "| 2 | 103.00 ± 1.41 (2 seeds) | 135.73 | 104.00 ± 1.41 (2 seeds) | 132.50 |" in markdown
    assert "| 10 | 111.00 ± 1.41 (2 seeds) | 93.84 | 112.00 ± 1.41 (2 seeds) | 93.16 |" in markdown
    # The second table: −ELBO, RE, KL per family, each with the paper's (−L[q], −RE, KL).
    row = "| 10 | 115.00 ± 1.41 (2 seeds) | 98.36 | 116.00 ± 1.41 (2 seeds) | 97.70 | 101.00 ± 1.41 (2 seeds) | 78.93 |"
    assert row in markdown
    assert "| 14.00 ± 0.00 (2 seeds) | 19.44 | 14.00 ± 0.00 (2 seeds) | 20.67 |" in markdown
    assert (sweep / "report_svae.csv").exists() and (sweep / "report_svae_terms.csv").exists()
    assert (sweep / "report_svae.png").exists()
    # --wandb: one offline W&B run in the sweep's group holding the tables and the plot.
    from vae_lab.report.cli import main

    sweep_dir = tmp_path / "multirun" / "2026-01-02" / "03-04-05"
    sweep.rename(sweep_dir.parent.mkdir(parents=True) or sweep_dir)
    os.environ["WANDB_MODE"] = "offline"
    try:
        main([str(sweep_dir), "--reference", "--wandb"])
    finally:
        del os.environ["WANDB_MODE"]
    (run,) = (sweep_dir / "wandb").glob("offline-run-*")
    # The sweep's group. W&B's service process writes the run file asynchronously; a CLI's exit
    # flushes it, in-process the records may land a moment after finish() returned.
    run_file = next(run.glob("run-*.wandb"))
    deadline = time.monotonic() + 30
    while b"2026-01-02_03-04-05" not in run_file.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert b"2026-01-02_03-04-05" in run_file.read_bytes()
    tables = sorted(p.name for p in (run / "files" / "media" / "table" / "report").glob("*.table.json"))
    assert [t.rsplit("_", 2)[0] for t in tables] == ["report_svae", "report_svae_terms"]
    rows = json.loads((run / "files" / "media" / "table" / "report" / tables[0]).read_text())["data"]
    assert len(rows) == 4 and {r[3] for r in rows} == {"gauss_nll", "vmf_nll"}  # d x family, one line per cell
    assert list((run / "files" / "media" / "images").rglob("report_svae_figure*.png"))
