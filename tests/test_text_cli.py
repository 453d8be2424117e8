"""Text VAEs through the real command line and the composed configs."""

from __future__ import annotations

import pytest

from tests.conftest import (
    NO_FIGURES,
    assert_same_training,
    cli_in_process,
    compose_config,
    data_root,
    read_metrics,
    run_cli,
)

needs_text_data = pytest.mark.skipif(
    data_root() is None or not (data_root() / "ptb" / "ptb.train.txt").exists(), reason="PTB/20NG not found"
)
TINY_LSTM = [
    "encoder.hidden=32",
    "encoder.embedding=16",
    "decoder.hidden=32",
    "decoder.embedding=16",
    "latent=4",
]
SLICE = ["data.module.limit_train=100", "data.module.limit_valid=40", "data.module.limit_test=40"]
# Media decode at most 20 steps; the hole metrics draw 2000 prior samples, not PTB's 128 000.
SHORT_SAMPLES = ["likelihood.max_length=20", "eval.hole_samples=2000"]


@pytest.mark.parametrize("data", ["ptb", "yahoo", "yelp"])
def test_text_data_selects_the_lstm_parts_and_text_media(tmp_path, data):
    cfg = compose_config([f"data={data}"], tmp_path)
    assert cfg.encoder._target_ == "vae_lab.nets.text.LSTMEncoder"
    assert cfg.decoder._target_ == "vae_lab.nets.text.LSTMDecoder"
    assert cfg.callbacks.text_media._target_ == "vae_lab.callbacks.text_media.TextMediaLogger"
    assert cfg.model.extra_metrics._target_ == "vae_lab.metrics.text.text_metrics"


def test_20ng_selects_the_bag_of_words_parts(tmp_path):
    cfg = compose_config(["data=20ng"], tmp_path)
    assert cfg.encoder._target_ == "vae_lab.nets.bow.BowEncoder"
    assert cfg.decoder._target_ == "vae_lab.nets.bow.BowDecoder"
    assert cfg.likelihood._target_ == "vae_lab.likelihoods.text.BagOfWordsLikelihood"


@pytest.mark.parametrize(
    "data, prior, latent, lr, clip, kappa",
    [
        ("ptb", "gauss", 50, 10.0, 0.25, None),
        ("ptb", "vmf", 50, 10.0, 0.25, 80),
        ("ptb", "power_spherical", 50, 10.0, 0.25, None),  # the protocol holds for any prior
        ("20ng", "vmf", 25, 1.0, 1.0, 100),
        ("20ng", "gauss", 25, 1.0, 1.0, None),
    ],
)
def test_vmf_text_experiment_sets_the_xu_durrett_protocol_per_dataset(tmp_path, data, prior, latent, lr, clip, kappa):
    cfg = compose_config([f"experiment=vmf_text_{data}", f"prior={prior}"], tmp_path)
    assert cfg.data.name == data
    assert (cfg.latent, cfg.optimizer.lr, cfg.grad_clip) == (latent, lr, clip)
    assert cfg.optimizer._target_ == "torch.optim.SGD"
    assert cfg.prior.get("kappa") == kappa


@needs_text_data
@pytest.mark.slow
def test_train_end_to_end_on_a_slice_of_ptb(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    args = [
        *SLICE,
        *TINY_LSTM,
        *SHORT_SAMPLES,
        "trainer.max_epochs=1",
        "eval.iw_samples_val=2",
        "eval.iw_samples_test=3",
    ]
    args += ["callbacks.text_media.every_n_epochs=1", f"hydra.run.dir={run_dir}"]
    assert cli_in_process(["data=ptb", *args], tmp_path, monkeypatch, capsys)[0] == 0
    metrics = read_metrics(run_dir)
    for name in (
        "test/ppl",
        "test/ppl_elbo",
        "test/mi",
        "test/nll",
        "test/kl",
        "test/active_units",
        "val/ppl",
    ):
        assert name in metrics, name
    assert 1 < metrics["test/ppl"] <= metrics["test/ppl_elbo"] * 1.05 and metrics["test/ppl_elbo"] < 11000
    for name in ("samples", "reconstructions", "interpolations"):
        assert (run_dir / "media" / f"{name}_test.txt").read_text().strip()


@needs_text_data
@pytest.mark.slow
def test_train_end_to_end_on_a_slice_of_20newsgroups(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    args = ["data.module.limit_train=500", "data.module.limit_valid=100", "data.module.limit_test=100"]
    args += ["trainer.max_epochs=2", "eval.iw_samples_test=20", f"hydra.run.dir={run_dir}"]
    assert cli_in_process(["data=20ng", *args], tmp_path, monkeypatch, capsys)[0] == 0
    metrics = read_metrics(run_dir)
    assert 1 < metrics["test/ppl"] < 2000 * 1.05  # below a uniform bag of 2000 words, give or take
    assert metrics["test/nll"] <= metrics["test/neg_elbo"] + 1e-3 and "test/mi" in metrics


def test_yahoo_without_its_training_split_gives_the_missing_data_error(tmp_path, monkeypatch, capsys):
    code, err = cli_in_process(["data=yahoo", f"data.root={tmp_path / 'empty'}"], tmp_path, monkeypatch, capsys)
    assert code == 2
    assert "yahoo_answers/yahoo.train.txt.gz missing" in err and "Traceback" not in err


@pytest.mark.slow
@needs_text_data
def test_ddp_cpu_text_training_and_evaluation_equal_one_process(tmp_path, monkeypatch, capsys):
    """Dropout and word dropout drawn for the global batch: two processes train as one. 130 test
    sentences in length-sorted batches of 20: 7 batches dealt unevenly to 2 processes."""
    common = [
        "data=ptb",
        *TINY_LSTM,
        *SHORT_SAMPLES,
        *NO_FIGURES,
        "data.module.limit_train=100",
        "data.module.limit_valid=40",
    ]
    common += ["data.module.limit_test=130", "data.module.eval_batch_size=20", "eval.iw_samples_test=5"]
    common += ["eval.iw_samples_val=2"]  # the validation NLL is compared too; 20 samples only cost time
    common += ["data.module.batch_size=10", "likelihood.word_dropout=0.3", "trainer.max_epochs=3"]
    assert cli_in_process([*common, f"hydra.run.dir={tmp_path / 'one'}"], tmp_path, monkeypatch, capsys)[0] == 0
    run_cli([*common, "trainer=ddp_cpu", f"hydra.run.dir={tmp_path / 'ddp'}"], cwd=tmp_path)
    single = read_metrics(tmp_path / "one")
    assert "test/mi" in single and "test/ppl" in single
    assert "test/kl_prior_to_aggregate" in single and "test/cu_0.03" in single  # the hole metrics too
    assert_same_training(tmp_path / "one", tmp_path / "ddp", steps=30)
