"""experiment=collapse_linear: the posterior-collapse theory of Dai, Wang & Wipf (2020) on data
from a known linear-Gaussian model (rank 3 in 20 dimensions, singular values 3, 2, 1, σ = 0.1)."""

from __future__ import annotations

import pytest
import torch

import vae_lab
from tests.conftest import NO_FIGURES, cli_in_process, read_metrics
from vae_lab.data.linear_gaussian import linear_gaussian_model

FAST = [
    "experiment=collapse_linear",
    "data.module.limit_train=2000",
    "trainer.max_epochs=20",
    "optimizer.lr=2e-2",
    *NO_FIGURES,
]


@pytest.mark.slow
def test_affine_vae_with_learned_gamma_is_probabilistic_pca(tmp_path, monkeypatch, capsys):
    run = tmp_path / "learned"
    assert cli_in_process([*FAST, f"hydra.run.dir={run}"], tmp_path, monkeypatch, capsys)[0] == 0
    metrics = read_metrics(run)
    assert metrics["test/active_units"] == 3  # the data's rank, of latent 5 (the other two fade to the prior)
    assert metrics["test/gamma"] == pytest.approx(0.01, rel=0.25)  # γ → the noise variance σ²
    assert metrics["test/gamma"] == pytest.approx(metrics["test/mse"], rel=0.1)  # the paper's identity
    # The decoder's active columns span the data's principal subspace: all principal angles ~0.
    model = vae_lab.load(run / "checkpoints" / "best.ckpt")
    weight = model.likelihood.head.weight.detach()  # (D, latent): the affine decoder
    active = weight.norm(dim=0).argsort(descending=True)[:3]
    basis, _ = torch.linalg.qr(weight[:, active])
    cosines = torch.linalg.svdvals(basis.T @ linear_gaussian_model(20, [3.0, 2.0, 1.0], seed=0))
    assert cosines.min().item() > 0.99


@pytest.mark.slow
def test_a_fixed_gamma_above_the_smallest_variance_collapses_that_dimension(tmp_path, monkeypatch, capsys):
    # Data variances along U: 9.01, 4.01, 1.01. γ = 2 lies above the last: one more collapses.
    run = tmp_path / "fixed"
    args = [*FAST, "likelihood.learn_variance=false", "likelihood.gamma=2.0", f"hydra.run.dir={run}"]
    assert cli_in_process(args, tmp_path, monkeypatch, capsys)[0] == 0
    metrics = read_metrics(run)
    assert metrics["test/active_units"] == 2 and metrics["test/collapsed_dims"] == 3
    assert metrics["test/gamma"] == pytest.approx(2.0)


@pytest.mark.slow
def test_a_soft_threshold_decoder_from_a_collapsed_start_stays_collapsed(tmp_path, monkeypatch, capsys):
    # Part (c): with s_3(z) before the affine decoder the collapsed point is a local minimum for
    # every data direction (λ ≤ 9 < γ v/c² ≈ 0.71 × 55.8, docs/collapse.md). The affine decoder
    # from the same start escapes to the PCA solution (docs/collapse.md's table), so a missing
    # threshold would show as active units here.
    run = tmp_path / "threshold"
    args = [*FAST, "trainer.max_epochs=8", "decoder.soft_threshold=3", "prior.init_scale=0.01", f"hydra.run.dir={run}"]
    assert cli_in_process(args, tmp_path, monkeypatch, capsys)[0] == 0
    metrics = read_metrics(run)
    assert metrics["test/active_units"] == 0 and metrics["test/kl"] < 0.05
    assert metrics["test/gamma"] == pytest.approx(metrics["test/mse"], rel=0.1)  # γ at the data's own variance
    assert metrics["test/mse"] > 0.6  # nothing reconstructed: the data's mean variance is 0.71
