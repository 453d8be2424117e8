#!/usr/bin/env bash
# The VampPrior MNIST comparison at latent 40 (docs/vampprior.md) at a 2-core-CPU budget:
# experiment=vampprior_mnist, standard prior vs VampPrior, 100 epochs on the full 50 000-image
# training split (the paper: up to 2000 with early stopping, ~1000 in practice), KL warm-up over
# 20 epochs instead of 100 (so most of the budget trains the true ELBO), the machine's fastest
# recipe (trainer.precision=auto compile=true: bf16-mixed where the CPU runs bf16 natively),
# test NLL with the protocol's 5000 importance samples on the full 10 000-image test set, scored
# in fp32. One seed. Re-running resumes (finished jobs are skipped). Then:
#   python -m vae_lab.report multirun/vampprior_mnist_100 --reference
set -euo pipefail
ROOT=${1:-multirun/vampprior_mnist_100}
${PYTHON:-python} -m vae_lab.train --multirun experiment=vampprior_mnist prior=gauss,vamp latent=40 \
  trainer.max_epochs=100 warmup=20 trainer.precision=auto compile=true hydra.sweep.dir="$ROOT"
