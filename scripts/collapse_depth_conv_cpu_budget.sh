#!/usr/bin/env bash
# The conv variant of Dai, Wang & Wipf's depth experiment (docs/collapse.md) at a small CPU grid:
# experiment=collapse_depth_conv at its default budget (5 epochs on 10 000 Fashion-MNIST training
# images = 500 steps of 100), AE and VAE, 1-3 convs per spatial scale, one seed, one thread per
# job; no importance-sampled NLL (the figure is the training reconstruction error), 12 800 prior
# samples for the hole metrics. Re-running resumes. Then:
#   python -m vae_lab.report multirun/collapse_depth_conv_cpu
set -euo pipefail
ROOT=${1:-multirun/collapse_depth_conv_cpu}
${PYTHON:-python} -m vae_lab.train --multirun experiment=collapse_depth_conv objective=autoencoder,elbo \
  decoder.layers_per_scale=1,2,3 threads=1 eval.iw_samples_test=0 eval.hole_samples=12800 hydra.sweep.dir="$ROOT"
