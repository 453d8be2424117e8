"""trainer.precision=auto and the bf16 warning follow the one capability check (mocked both ways)."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import cli_in_process, compose_config
from tests.test_training_step import SMALL, _fit
from vae_lab import capability
from vae_lab.train import build


@pytest.fixture(params=[True, False], ids=["native-bf16", "no-native-bf16"])
def native(request, monkeypatch):
    monkeypatch.setattr(capability, "cpu_has_native_bf16", lambda: request.param)
    monkeypatch.setattr(capability, "cpu_capability", lambda: "AVX512" if request.param else "AVX2")
    monkeypatch.setattr(capability, "cpu_has_amx", lambda: False)
    return request.param


def test_auto_picks_bf16_only_where_it_is_native(native):
    precision, note = capability.resolve_precision("auto", "cpu")
    assert precision == ("bf16-mixed" if native else "32-true")
    assert note == f"trainer.precision=auto picked {precision} (CPU {'AVX512' if native else 'AVX2'}, AMX: no, " + (
        "native bf16: yes)" if native else "native bf16: no)"
    )


def test_explicit_bf16_warns_only_without_native_bf16(native):
    precision, warning = capability.resolve_precision("bf16-mixed", "cpu")
    assert precision == "bf16-mixed"  # what the user asked for is kept
    if native:
        assert warning is None
    else:
        assert "CPU AVX2, AMX: no, native bf16: no" in warning and "slower than fp32" in warning
    assert capability.resolve_precision("32-true", "cpu") == ("32-true", None)


def test_auto_without_native_bf16_trains_bit_identically_to_fp32(tmp_path, monkeypatch):
    monkeypatch.setattr(capability, "cpu_has_native_bf16", lambda: False)
    weights = []
    for precision in ("auto", "32-true"):
        cfg = compose_config([*SMALL, f"trainer.precision={precision}", "warmup=0"], tmp_path / precision)
        torch.manual_seed(0)  # same initial weights
        datamodule, model, _, trainer = build(cfg)
        assert cfg.trainer.precision == "32-true" and trainer.precision == "32-true"
        datamodule.setup("fit")
        _fit(model, datamodule, steps=4)
        weights.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights, strict=True))


def test_the_run_logs_and_records_the_precision_it_used(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(capability, "cpu_has_native_bf16", lambda: False)
    run = tmp_path / "run"
    args = ["data=synthetic", "trainer.max_epochs=1", "eval.iw_samples_test=2", "trainer.precision=bf16-mixed"]
    code, out = cli_in_process([*args, f"hydra.run.dir={run}"], tmp_path, monkeypatch, capsys)
    assert code == 0, out
    assert "trainer.precision=bf16-mixed on a CPU" in out and "native bf16: no" in out
    assert json.loads((run / "metrics.json").read_text())["precision"] == "bf16-mixed"


@pytest.mark.parametrize(
    ("accelerator", "chunk", "samples", "hinted"),
    [
        ("gpu", 32, 5000, True),
        ("cuda", 100, 500, True),
        ("gpu", 1000, 5000, False),
        ("gpu", 32, 20, False),
        ("cpu", 32, 5000, False),
    ],
)
def test_a_small_evaluation_chunk_is_pointed_out_only_on_a_gpu(accelerator, chunk, samples, hinted, caplog):
    from omegaconf import OmegaConf

    from vae_lab.train import note_gpu_evaluation_chunk

    cfg = OmegaConf.create(
        {"trainer": {"accelerator": accelerator}, "eval": {"iw_chunk_size": chunk, "iw_samples_test": samples}}
    )
    with caplog.at_level("INFO", logger="vae_lab"):
        note_gpu_evaluation_chunk(cfg)
    assert (f"eval.iw_chunk_size={chunk} decodes" in caplog.text) == hinted
