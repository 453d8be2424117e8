#!/usr/bin/env bash
# The density-gap comparison on PTB at a 2-core-CPU budget (docs/density_gap.md): experiment=dg_ptb
# with 1 epoch (1315 steps of 32 sentences) instead of <= 100, no KL annealing (warmup=1: β = 1 from the start; the paper
# anneals over 10 epochs), cyclic annealing with 2 cycles, and 16 importance samples for log p(x)
# (the paper's count). Eight models, one seed, run one after another; re-running resumes (finished
# jobs are skipped). Then:  python -m vae_lab.report multirun/dg_ptb_cpu
set -euo pipefail
ROOT=${1:-multirun/dg_ptb_cpu}
BUDGET=(experiment=dg_ptb trainer.max_epochs=1 warmup=1 eval.iw_samples_test=16)
train() { python -m vae_lab.train --multirun "${BUDGET[@]}" "$@"; }
train objective=elbo,density_gap,free_bits prior=gauss hydra.sweep.dir="$ROOT/gauss"   # VAE, DG-VAE (|b| 32), FB (4)
train prior=bn_gauss,vmf hydra.sweep.dir="$ROOT/families"                             # BN-VAE (γ 0.7), vMF-VAE (κ 13)
train objective=density_gap prior=vmf hydra.sweep.dir="$ROOT/dg_vmf"                  # DG-vMF (|b| 32)
train objective.beta=0.2 objective.schedule=constant hydra.sweep.dir="$ROOT/beta"     # β-VAE (0.2)
train objective.schedule=cyclic objective.cycles=2 hydra.sweep.dir="$ROOT/cyclic"     # cyclic annealing
