"""objective=autoencoder: the same networks trained without KL or sampling, and evaluated on what
exists for a deterministic model."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Independent, Normal

from tests.conftest import cli_in_process, read_metrics
from vae_lab.data.images import load_synthetic
from vae_lab.latents.gaussian import GaussianLatent
from vae_lab.objectives import Autoencoder, Terms
from vae_lab.restore import load

COMMON = ["data=synthetic", "trainer.max_epochs=3", "latent=4", "eval.iw_samples_test=20", "eval.hole_samples=500"]


def test_the_autoencoder_decodes_the_posterior_mean_and_minimises_the_reconstruction_only():
    latent = GaussianLatent(in_features=1, latent_dim=3)
    q = Independent(Normal(torch.randn(5, 3), torch.ones(5, 3)), 1)
    objective = Autoencoder()
    z, info = objective.latent_code(latent, q)
    assert torch.equal(z, q.mean) and info is None and not objective.stochastic
    log_px = torch.randn(5)
    terms = Terms(q=q, p=latent.prior(), z=z, log_px=log_px, kl=torch.full((5,), 7.0), latent=latent)
    out = objective(terms, beta=1.0)
    torch.testing.assert_close(out.loss, -log_px)  # no KL in the loss, whatever β
    assert out.logs == {} and objective.monitor == "recon"


def test_autoencoder_runs_report_only_what_exists_and_reconstruct_better_than_the_vae(tmp_path, monkeypatch, capsys):
    for name, objective in (("ae", "objective=autoencoder"), ("vae", "objective=elbo")):
        args = [*COMMON, objective, "eval.train_set=true", f"hydra.run.dir={tmp_path / name}"]
        assert cli_in_process(args, tmp_path, monkeypatch, capsys)[0] == 0
    ae, vae = read_metrics(tmp_path / "ae"), read_metrics(tmp_path / "vae")
    assert {"test/recon", "test/mse", "test/active_units"} <= ae.keys()
    absent = {"test/neg_elbo", "test/kl", "test/nll", "test/mi", "test/kl_prior_to_aggregate", "test/cu_0.03"}
    assert not absent & ae.keys() and absent <= vae.keys()  # absent for the AE, not NaN
    assert all(v == v for v in ae.values())
    assert ae["test/recon"] < vae["test/recon"] and ae["test/mse"] < vae["test/mse"]
    assert (tmp_path / "ae" / "checkpoints" / "best.ckpt").exists()  # checkpoints follow val/recon
    # eval.train_set: the training error the paper plots, recomputed from the evaluated weights.
    model = load(tmp_path / "ae" / "checkpoints" / "best.ckpt").eval()
    train = load_synthetic().train
    with torch.no_grad():
        terms, _ = model.terms(train)
    assert ae["train_set/mse"] == pytest.approx(float((terms.px.mean - train).square().mean()), rel=1e-5)
    assert ae["train_set/recon"] == pytest.approx(float(-terms.log_px.mean()), rel=1e-5)
    assert "train_set/nll" not in vae and "train_set/kl" in vae  # no importance sampling of the training set
    assert not list((tmp_path / "ae" / "media").glob("samples_*.png"))  # no prior to sample
    assert list((tmp_path / "vae" / "media").glob("samples_*.png"))


def test_collapse_is_watched_per_dimension_over_training(tmp_path, monkeypatch, capsys):
    import json

    from vae_lab.metrics.latent import PerDimensionStatistics

    stats = PerDimensionStatistics(3)
    stats.update(
        torch.tensor([[0.001, 1.0, 2.0], [0.003, 3.0, 2.0]]), torch.tensor([[1.0, 0.5, 0.2], [0.98, 0.3, 0.2]])
    )
    out = stats.compute()
    torch.testing.assert_close(out["kl"], torch.tensor([0.002, 2.0, 2.0], dtype=torch.float64))
    assert out["scales"].shape == (2, 3)
    # Through the CLI: the collapsed count, the per-dimension heatmap and the σ histogram.
    args = ["data=synthetic", "trainer.max_epochs=4", "latent=6", "eval.iw_samples_test=5", "eval.hole_samples=200"]
    assert cli_in_process([*args, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, monkeypatch, capsys)[0] == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]
    assert 0 <= metrics["test/collapsed_dims"] <= 6 and "val/collapsed_dims" in metrics
    for figure in ("collapse_over_training.png", "posterior_sigma_hist.png"):
        assert (tmp_path / "run" / "media" / figure).stat().st_size > 1000
