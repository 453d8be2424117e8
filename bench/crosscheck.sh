#!/usr/bin/env bash
# Same-budget cross-check against pythae 0.1.2 (issue: "Reproductions that convince"): pythae's
# VAE, VAMP and SVAE and vae_lab's, on the same networks, data, optimiser, batch and epochs, each
# scored by pythae's get_nll and by vae_lab's estimator. Re-running skips what is already in the
# output folder. Arguments go to both halves: --epochs N --samples S --test-points N --seeds ...
#   bench/crosscheck.sh [--out-dir bench/out/crosscheck] [--epochs 10] [--seeds 0 1]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export VAE_LAB_DATA="${VAE_LAB_DATA:-$ROOT/../shared/data}" WANDB_MODE="${WANDB_MODE:-offline}"
bash bench/peer_env.sh > /dev/null  # the peer environment (idempotent)
.venv-bench/bin/python bench/crosscheck_pythae.py "$@"
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" .venv/bin/python bench/crosscheck_ours.py "$@"
