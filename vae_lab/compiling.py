"""When to ``torch.compile``, and running eagerly where compiling cannot work.

``compile`` (the training loss) and ``eval.compile`` (importance-sampled evaluation's pass over each
chunk of samples: decoder, densities, log-sum-exp) take ``true``, ``false`` or ``auto``. ``auto``
compiles only where it repays its compile time (once per process and graph, so not where every
batch has another shape; see ``worth_compiling``) and
where a compiler exists: the CPU backend builds C++ and needs a C++ compiler, the GPU backend
needs Triton. A compile that fails at run time warns once and the work continues eagerly, so an
unusual decoder or machine never loses a run to the optimisation.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import shutil
from collections.abc import Callable

log = logging.getLogger(__name__)

AUTO = "auto"
# Importance samples per point from which compiling the evaluation's decoder and density pass pays: the test
# decodes S = 5000 samples of every point, validation's S = 20 pass is over before a compile would be.
MIN_EVAL_SAMPLES = 500
# Optimiser steps from which compiling the training loss pays: a first compile costs tens of
# seconds on a small CPU (seconds once torch's on-disk cache holds the graph) against ~a sixth of
# each step saved; the measured break-even is in the README ("Speed").
MIN_TRAINING_STEPS = 10_000


@functools.cache
def compiler_available(device_type: str) -> bool:
    """A toolchain for torch.compile's default backend on this device type."""
    if device_type == "cuda":
        return importlib.util.find_spec("triton") is not None
    return any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "c++", "clang++") if c)


def check_setting(name: str, value: object) -> None:
    if not (isinstance(value, bool) or value == AUTO):
        raise ValueError(f"{name}={value}: expected true, false or auto")


def worth_compiling(setting: bool | str, device_type: str, repays: bool) -> bool:
    """Resolve ``true``/``false``/``auto``; ``auto`` needs work that ``repays`` compiling, and a compiler."""
    if setting != AUTO:
        return bool(setting)
    return repays and compiler_available(device_type)


def torch_compile(fn: Callable, **options) -> Callable:
    """``torch.compile(fn)``, with the on-disk kernel cache kept apart per instruction-set restriction.

    ``ATEN_CPU_CAPABILITY`` (e.g. ``avx2``: how the benchmark makes an AVX-512 CPU behave like an
    older one) changes the kernels torch generates but not the key of its on-disk cache: a restricted
    run that loaded kernels an unrestricted run had cached computed wrong values (the default
    model's test NLL 110.46 instead of 95.91; bench/README.md). Such runs get their own cache folder.
    """
    import torch

    restriction = os.environ.get("ATEN_CPU_CAPABILITY")
    if restriction:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir

        # Unset, or the default that torch writes back once asked (importing Lightning does): not a user's choice.
        if os.environ.get("TORCHINDUCTOR_CACHE_DIR") in (None, default_cache_dir()):
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = f"{default_cache_dir()}_{restriction.lower()}"
    return torch.compile(fn, **options)


class CompiledOrEager:
    """``fn`` compiled on first use; if compiling or the compiled call fails, ``fn`` eagerly from then on."""

    def __init__(self, fn: Callable, what: str, **compile_options):
        self.fn, self.what, self.options = fn, what, compile_options
        self.compiled: Callable | None = None
        self.failed = False

    def __call__(self, *args):
        if self.failed:
            return self.fn(*args)
        if self.compiled is None:
            self.compiled = torch_compile(self.fn, **self.options)
        try:
            return self.compiled(*args)
        except Exception as err:  # noqa: BLE001 - any compiler failure: fall back, the run goes on
            self.failed = True
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            log.warning("torch.compile of %s failed (%s); running it eagerly", self.what, first[:300])
            return self.fn(*args)
