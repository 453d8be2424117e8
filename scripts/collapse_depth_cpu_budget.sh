#!/usr/bin/env bash
# Dai, Wang & Wipf's depth experiment (docs/collapse.md) at a 2-core-CPU budget:
# experiment=collapse_depth on the full Fashion-MNIST training split (50 000 images) for 10 epochs
# (5000 steps of 100) instead of the experiment's default 5 epochs on 10 000, AE and VAE at MLP
# depths 1, 2, 4, 6, 8, 10, one seed; 100 importance samples for the test NLL. Re-running resumes
# (finished jobs are skipped). Then:  python -m vae_lab.report multirun/collapse_depth_cpu
set -euo pipefail
ROOT=${1:-multirun/collapse_depth_cpu}
${PYTHON:-python} -m vae_lab.train --multirun experiment=collapse_depth trainer.max_epochs=10 data.module.limit_train=null \
  objective=autoencoder,elbo decoder.depth=1,2,4,6,8,10 hydra.sweep.dir="$ROOT/mlp"
