#!/usr/bin/env bash
# The VampPrior Frey Faces comparison at latent 40 (docs/vampprior.md) at the student
# reproduction's full length: experiment=vampprior_frey, standard prior vs VampPrior, 830 epochs
# (1565 training images: 16 steps of 100 per epoch), the protocol's 100-epoch KL warm-up and
# early stopping (patience 50 on the validation −ELBO), test NLL with 5000 importance samples on
# all 200 test images. One seed, one thread per job (it shared the 2-core CPU with another job).
# Re-running resumes (finished jobs are skipped). Then:
#   python -m vae_lab.report multirun/vampprior_frey_830 --reference
set -euo pipefail
ROOT=${1:-multirun/vampprior_frey_830}
${PYTHON:-python} -m vae_lab.train --multirun experiment=vampprior_frey prior=gauss,vamp latent=40 \
  trainer.max_epochs=830 threads=1 hydra.sweep.dir="$ROOT"
