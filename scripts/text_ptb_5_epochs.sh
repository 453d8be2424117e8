#!/usr/bin/env bash
# Xu & Durrett's PTB language model (README "Reproduction status", REFERENCE.md §3) at a 2-core-CPU
# budget: experiment=vmf_text_ptb, the Gaussian baseline with KL annealing against vMF with the
# fixed κ = 80, 5 full epochs each (the paper: ~100), one seed. KL annealing over 3 epochs instead of
# 10, so that β = 1 for the last two and the checkpoint scored is trained on the ELBO. The two jobs
# train side by side on one thread each (joblib), with the machine's fastest precision
# (trainer.precision=auto: bf16-mixed where the CPU runs bf16 natively, fp32 otherwise) and the ELBO
# perplexity as the test metric (the paper's). Then each job's best checkpoint is scored again in
# fp32 by `vae_lab.evaluate` with IW_SAMPLES importance samples per sentence on the full test set
# (default 100: 500, He et al.'s count, took 56 min on both cores for one prior here, see the README).
# Re-running into the same folder resumes: finished jobs and evaluations are skipped. Then:
#   python -m vae_lab.report multirun/text_ptb_5 --reference
# EPOCHS, WARMUP, PRIORS, PRECISION, IW_SAMPLES and N_JOBS override the budget; arguments after
# the folder are passed on to training (a smoke test: +trainer.limit_train_batches=5
# +trainer.limit_val_batches=2 +trainer.limit_test_batches=2).
set -euo pipefail
ROOT=${1:-multirun/text_ptb_5}
PY=${PYTHON:-python}
IW_SAMPLES=${IW_SAMPLES:-100}
$PY -m vae_lab.train --multirun experiment=vmf_text_ptb prior="${PRIORS:-gauss,vmf}" \
  trainer.max_epochs="${EPOCHS:-5}" warmup="${WARMUP:-3}" trainer.precision="${PRECISION:-auto}" \
  eval.iw_samples_test=0 hydra/launcher=joblib hydra.launcher.n_jobs="${N_JOBS:-2}" threads=1 \
  hydra.sweep.dir="$ROOT" "${@:2}"
if [ "$IW_SAMPLES" -gt 0 ]; then
  find "$ROOT" -mindepth 2 -maxdepth 2 -name metrics.json -printf '%h\n' | sort |
    xargs -P "${N_JOBS:-2}" -I{} $PY -m vae_lab.evaluate {} eval.iw_samples_test="$IW_SAMPLES" threads=1 --skip-done
fi
