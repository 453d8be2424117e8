"""Every option of every config group composes and runs one batch through Lightning (fast_dev_run)."""

from __future__ import annotations

import json

import pytest
import torch
from hydra.utils import get_class, instantiate

from tests.conftest import compose_config, data_root
from vae_lab.config import CONF_DIR
from vae_lab.train import run

GROUPS = ["data", "encoder", "prior", "decoder", "likelihood", "objective", "optimizer", "trainer", "logger"]
GROUPS += ["callbacks", "experiment"]
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
DATA_FOR |= {("likelihood", "discretized_logistic"): "frey", ("likelihood", "token_sequence"): "ptb"}
DATA_FOR |= {("likelihood", "bag_of_words"): "20ng", ("likelihood", "gaussian"): "linear_gaussian"}


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
    if group == "experiment":  # an experiment picks the data it is the protocol for
        assert cfg.data.name in cfg.experiment_data
    if (group, option) in NEEDS_GPU and not torch.cuda.is_available():
        pytest.skip("composes; running needs a GPU")
    if (group, option) in NOT_IN_SHARED_DATA:
        pytest.skip("composes; its data files are not in the shared data")
    if (group, option) in RUN_ELSEWHERE:
        pytest.skip("composes; run through the CLI in test_cli.py")
    metrics = run(cfg)
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values()), metrics
    stochastic = get_class(cfg.objective._target_).stochastic  # an autoencoder has no ELBO or NLL
    assert ({"val/neg_elbo", "test/neg_elbo", "test/nll"} if stochastic else {"val/recon", "test/recon"}) <= set(
        metrics
    )
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["metrics"] == pytest.approx(metrics)


@pytest.mark.parametrize(("data", "samples"), [("mnist", 5000), ("frey", 5000), ("ptb", 500), ("20ng", 500)])
def test_default_test_importance_samples_follow_the_papers(tmp_path, data, samples):
    cfg = compose_config([f"data={data}"], tmp_path)
    assert cfg.model.iw_samples_test == samples
    assert compose_config([f"data={data}", "eval.iw_samples_test=9"], tmp_path).model.iw_samples_test == 9


@pytest.mark.slow
def test_every_option_composes_and_resolves_in_a_fresh_process(tmp_path):
    """Through vae_lab.config alone (no vae_lab.train import), as a notebook would."""
    import subprocess
    import sys

    pairs = [f"{g}={o}" for g, o in options()]
    script = (
        "import sys\n"
        "from omegaconf import OmegaConf\n"
        "from vae_lab.config import compose_train_config\n"
        "for pair in sys.argv[1:]:\n"
        "    group, option = pair.split('=')\n"
        "    extra = ['data=ptb'] if pair in ('encoder=lstm', 'decoder=lstm', 'likelihood=token_sequence') else []\n"
        "    extra += ['data=20ng'] if pair in ('encoder=bow_mlp', 'likelihood=bag_of_words') else []\n"
        "    extra += ['data=frey'] if pair == 'likelihood=discretized_logistic' else []\n"
        f"    cfg = compose_train_config([pair, *extra], {str(tmp_path)!r})\n"
        "    OmegaConf.to_container(cfg, resolve=True)\n"
        "print('composed', len(sys.argv) - 1)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, *pairs], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"composed {len(pairs)}" in result.stdout
    assert {"likelihood=bernoulli", "objective=free_bits", "logger=wandb"} <= set(pairs)


@pytest.mark.parametrize("prior", ["gauss", "vmf"])
def test_svae_mnist_composes_for_every_d_with_its_stated_sphere_convention(tmp_path, prior):
    """experiment=svae_mnist: d_convention=sphere (default) puts the S-VAE on S^d in R^(d+1),
    ambient on S^(d-1) in R^d; the N-VAE has d dimensions either way. The nets are 784-256-128."""
    for d in (2, 5, 10, 20, 40):
        for convention, extra in (("sphere", 1), ("ambient", 0)):
            overrides = ["experiment=svae_mnist", f"prior={prior}", f"latent={d}", f"d_convention={convention}"]
            cfg = compose_config(overrides, tmp_path)
            size = d + (extra if prior == "vmf" else 0)
            assert cfg.model.latent.latent_dim == size and cfg.model.decoder.in_features == size
    model = instantiate(compose_config(["experiment=svae_mnist", f"prior={prior}"], tmp_path).model)
    widths = [m.out_features for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [256, 128] and model.latent.latent_dim == (11 if prior == "vmf" else 10)
    with pytest.raises(Exception, match="d_convention='both'"):
        compose_config(["experiment=svae_mnist", "d_convention=both"], tmp_path).model.latent.latent_dim  # noqa: B018
