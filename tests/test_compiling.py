"""torch.compile where it pays: the `auto` rule, the compiled evaluation's estimate, and the eager fallback."""

from __future__ import annotations

import logging
import os

import pytest
import torch

from tests.conftest import compose_config
from tests.test_training_step import SMALL
from vae_lab import compiling
from vae_lab.compiling import MIN_EVAL_SAMPLES, CompiledOrEager, worth_compiling
from vae_lab.train import ConfigError, build, validate_config


@pytest.mark.parametrize("has_compiler", [True, False])
def test_auto_compiles_only_long_work_and_only_with_a_compiler(monkeypatch, has_compiler):
    monkeypatch.setattr(compiling, "compiler_available", lambda device_type: has_compiler)
    assert worth_compiling("auto", "cpu", repays=True) is has_compiler
    assert worth_compiling("auto", "cpu", repays=False) is False
    # An explicit setting is obeyed whatever the work or the toolchain.
    assert worth_compiling(True, "cpu", repays=False) is True
    assert worth_compiling(False, "cpu", repays=True) is False


@pytest.mark.parametrize("restriction", ["avx2", None])
def test_a_restricted_instruction_set_compiles_into_its_own_kernel_cache(monkeypatch, restriction):
    # Kernels cached by an unrestricted run gave wrong values when loaded under ATEN_CPU_CAPABILITY.
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    if restriction:
        monkeypatch.setenv("ATEN_CPU_CAPABILITY", restriction)
    else:
        monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())  # what importing Lightning leaves
    compiled = compiling.torch_compile(torch.sin)  # lazy: nothing is compiled until called
    assert callable(compiled)
    expected = f"{default_cache_dir()}_{restriction}" if restriction else default_cache_dir()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == expected
    # A folder the user chose is kept.
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/somewhere/chosen")
    compiling.torch_compile(torch.sin)
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == "/somewhere/chosen"


def _evaluation_model(tmp_path, compile_setting, *overrides):
    cfg = compose_config([*SMALL, f"eval.compile={compile_setting}", *overrides], tmp_path)
    torch.manual_seed(0)
    datamodule, model, _, _ = build(cfg)
    datamodule.setup("test")
    return datamodule.splits.test[:50], model.eval()


def _estimate(model, x, samples):
    torch.manual_seed(3)  # same importance samples for every variant
    with torch.no_grad():
        return model.log_likelihood(x, model.posterior(x), samples)


# The Gaussian posterior's density is compiled into the pass, the vMF's stays eager (its family says so).
@pytest.mark.parametrize("prior", ["gauss", "vmf"])
def test_compiled_evaluation_gives_the_eager_estimate(tmp_path, prior):
    x, model = _evaluation_model(tmp_path, "auto", f"prior={prior}")
    samples = MIN_EVAL_SAMPLES + 12  # a short last chunk too
    compiled = _estimate(model, x, samples)
    assert model._compiled_log_sum_weights is not None and not model._compiled_log_sum_weights.failed
    model.set_evaluation(0, samples, model.iw_chunk_size, 0, False)
    eager = _estimate(model, x, samples)
    assert model._compiled_log_sum_weights is None  # eager this time
    torch.testing.assert_close(compiled, eager, rtol=0, atol=1e-3)
    assert eager.isfinite().all() and not torch.equal(eager, torch.zeros_like(eager))


def test_auto_keeps_short_evaluations_eager(tmp_path):
    x, model = _evaluation_model(tmp_path, "auto")
    _estimate(model, x, 20)  # validation's S: not worth a compile
    assert model._compiled_log_sum_weights is None


def test_auto_keeps_variable_length_data_eager(tmp_path):
    """Sentences come in batches of one length each: a compiled pass would recompile per length."""
    from vae_lab.likelihoods.text import TokenSequenceLikelihood

    assert TokenSequenceLikelihood.fixed_shape is False
    x, model = _evaluation_model(tmp_path, "auto")
    model.likelihood.fixed_shape = False  # as the token-sequence likelihood declares
    _estimate(model, x, MIN_EVAL_SAMPLES)
    assert model._compiled_log_sum_weights is None


def test_a_failing_compile_warns_once_and_runs_eagerly(monkeypatch, caplog):
    def broken_compile(fn, **options):
        def compiled(*args):
            raise RuntimeError("no C++ compiler found\nlong traceback")

        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    double = CompiledOrEager(lambda t: 2 * t, "a test function")
    with caplog.at_level(logging.WARNING, logger="vae_lab.compiling"):
        results = [double(torch.ones(2)) for _ in range(3)]
    assert all(torch.equal(r, torch.full((2,), 2.0)) for r in results)
    warnings = [r.getMessage() for r in caplog.records if r.name == "vae_lab.compiling"]
    assert warnings == ["torch.compile of a test function failed (no C++ compiler found); running it eagerly"]


@pytest.mark.parametrize("key", ["eval.compile", "compile"])
def test_a_compile_setting_other_than_true_false_auto_is_refused(tmp_path, key):
    cfg = compose_config([*SMALL, f"{key}=maybe"], tmp_path)
    with pytest.raises(ConfigError, match=f"{key}=maybe: expected true, false or auto"):
        validate_config(cfg)


@pytest.mark.parametrize(
    ("prior", "steps", "compiles"),
    [
        ("gauss", compiling.MIN_TRAINING_STEPS, True),
        ("gauss", 100, False),
        ("vmf", compiling.MIN_TRAINING_STEPS, False),
    ],
)
def test_auto_compiles_long_runs_whose_loss_is_one_graph(tmp_path, caplog, prior, steps, compiles):
    cfg = compose_config([*SMALL, f"prior={prior}", "compile=auto"], tmp_path)
    datamodule, model, _, _ = build(cfg)
    datamodule.setup("fit")
    x = next(iter(datamodule.train_dataloader()))[0][0]
    model.total_steps = steps
    rng = torch.get_rng_state()
    with caplog.at_level(logging.INFO, logger="vae_lab.model"):
        assert model._decide_compiling(x, 1.0) is compiles
    assert torch.equal(torch.get_rng_state(), rng)  # deciding drew no training noise
    (message,) = [r.getMessage() for r in caplog.records if r.name == "vae_lab.model"]
    if compiles:
        assert message == f"compile=auto: compiling the training loss ({steps} steps, one graph)"
    elif steps < compiling.MIN_TRAINING_STEPS:
        assert message == f"compile=auto: training eagerly ({steps} steps < {compiling.MIN_TRAINING_STEPS})"
    else:  # the vMF rejection sampler's data-dependent loop breaks the graph
        assert message.startswith("compile=auto: training eagerly, the loss does not trace into one graph (")
