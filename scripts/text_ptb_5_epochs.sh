#!/usr/bin/env bash
# Xu & Durrett's PTB language model (README "Reproduction status", REFERENCE.md §3) at a 2-core-CPU
# budget: experiment=vmf_text_ptb, the Gaussian baseline with KL annealing against vMF with the
# fixed κ = 80, 5 full epochs each (the paper: ~100), one seed. KL annealing over 3 epochs instead of
# 10, so that β = 1 for the last two and the checkpoint scored is trained on the ELBO. The two jobs
# run side by side on one thread each (joblib). The test perplexity from 500 importance samples per
# sentence on the full test set is the longest part (estimated at about an hour per prior here);
# IW_SAMPLES=0 keeps only the ELBO perplexity (the paper's metric). Re-running into the same folder
# resumes (finished jobs are skipped). Then:
#   python -m vae_lab.report multirun/text_ptb_5 --reference
# EPOCHS, WARMUP, PRIORS, IW_SAMPLES and N_JOBS override the budget; arguments after the folder
# are passed on as overrides (a smoke test: +trainer.limit_train_batches=5 +trainer.limit_val_batches=2).
set -euo pipefail
ROOT=${1:-multirun/text_ptb_5}
${PYTHON:-python} -m vae_lab.train --multirun experiment=vmf_text_ptb prior="${PRIORS:-gauss,vmf}" \
  trainer.max_epochs="${EPOCHS:-5}" warmup="${WARMUP:-3}" eval.iw_samples_test="${IW_SAMPLES:-500}" \
  hydra/launcher=joblib hydra.launcher.n_jobs="${N_JOBS:-2}" threads=1 hydra.sweep.dir="$ROOT" "${@:2}"
