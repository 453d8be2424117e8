#!/usr/bin/env bash
# Creates (or refreshes) the benchmark-only environment .venv-bench holding the peer library
# pythae 0.1.2 and the power-spherical package. It is kept apart from the project's .venv so the
# peer's dependencies (pydantic, scikit-learn, ...) can never change what vae_lab runs against.
# Idempotent: re-running it only installs what is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV_BENCH:-$ROOT/.venv-bench}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi

# The constraints file pins torch==2.13.0: pip's configuration serves that version as a local CPU
# wheel, and without the pin pythae's unpinned "torch" requirement could pull the CUDA build.
# pydantic stays on 2.x (pythae 0.1.2 uses pydantic.dataclasses and requires pydantic>=2).
"$VENV/bin/python" -m pip install --quiet -c "$ROOT/constraints.txt" \
    "torch==2.13.0" \
    "pythae==0.1.2" \
    "pydantic>=2,<3" \
    "power-spherical" \
    "numpy" \
    "scipy"

# Byte-compile once: PYTHONDONTWRITEBYTECODE=1 is set on these machines, so without this every
# run would recompile torch, scipy and pythae from source (tens of seconds per import).
"$VENV/bin/python" -m compileall -q -j 0 "$VENV/lib" >/dev/null || true

"$VENV/bin/python" - <<'EOF'
import importlib.metadata as md

import torch

import pythae  # noqa: F401

for name in ("torch", "pythae", "pydantic", "power-spherical", "numpy", "scipy"):
    print(f"{name:16s} {md.version(name)}")
assert torch.__version__.startswith("2.13.0"), torch.__version__
EOF
