#!/usr/bin/env bash
# GPU check on a machine with one NVIDIA GPU (about 7 minutes on an H200, estimated from the parts
# timed there on 2026-12-04; nothing outside the machine needed):
#   1. the machine: nvidia-smi -L, torch / CUDA / cuDNN / Lightning versions, torch sees the GPU;
#   2. the first-step loss on the GPU (fp32) equals the CPU's (bench/gpu_check.py first-step);
#   3. Gaussian, VampPrior, vMF (MNIST) and PTB train a few hundred steps with trainer=gpu,
#      bf16-mixed and compile=true, then validate and test: the test metrics must be finite;
#   4. training samples/s and evaluation points/s of each run (reported, not judged), and the same
#      Gaussian VAE in fp32 without compiling (case gauss32), for the precision's share of the speed;
#   5. `make train`'s run on the GPU: the defaults (fp32, compile=auto) with trainer=gpu, timed end to end
#      (GPU_CHECK_FULL_TRAIN=0 skips it; off in a CPU rehearsal unless set to 1);
# then a summary table. Exit status 1 if any check failed.
#
#   bash bench/gpu_check.sh                 # results in $OUT if set, else bench/out/gpu_check
#
# Python: the system python3 (or $PYTHON) when it imports vae_lab and its dependencies; otherwise
# a fresh venv (bench/out/gpu_venv, with the system's packages visible so a CUDA torch there is
# reused) gets `pip install -c constraints.txt -e .`. Data: $VAE_LAB_DATA, else ../shared/data,
# else shared/data inside this copy of the repository. On a machine without a package index, put the
# missing packages on PYTHONPATH instead (bench/README.md, "GPU check", says how it was done).
# Knobs: GPU_CHECK_CASES="gauss vamp vmf ptb gauss32", GPU_CHECK_TRAIN_CASES (default: the cases; the
# training runs only of these), GPU_CHECK_STEPS=300, GPU_CHECK_RUN_TIMEOUT=120 (s per
# run), GPU_CHECK_BUDGET=450 (s; later runs are skipped), GPU_CHECK_KEEP_CKPT=1 (keep checkpoints),
# GPU_CHECK_FULL_TRAIN_TIMEOUT=300 (s), GPU_CHECK_FULL_TRAIN_ARGS (overrides added to that run;
# default on a GPU "eval.iw_chunk_size=1000", the README's GPU recipe: with the CPU-sized chunk of 32
# the test pass alone ran past 80 s on the H200; empty in a CPU rehearsal, where it can shorten the
# run), GPU_CHECK_DEVICE=cpu (a rehearsal of the whole script on a CPU: trainer=cpu, no nvidia-smi).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
RESULTS=${OUT:-$REPO/bench/out/gpu_check}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
STEPS=${GPU_CHECK_STEPS:-300}
read -r -a CASES <<<"${GPU_CHECK_CASES:-gauss vamp vmf ptb gauss32}"
read -r -a TRAIN_CASES <<<"${GPU_CHECK_TRAIN_CASES:-${CASES[*]}}"
RUN_TIMEOUT=${GPU_CHECK_RUN_TIMEOUT:-120}
BUDGET=${GPU_CHECK_BUDGET:-450}
if [ "$DEVICE" = cpu ]; then TRAINER=cpu FULL_TRAIN=${GPU_CHECK_FULL_TRAIN:-0}; else TRAINER=gpu FULL_TRAIN=${GPU_CHECK_FULL_TRAIN:-1}; fi
mkdir -p "$RESULTS"
export WANDB_MODE=offline VAE_LAB_NO_DOWNLOAD=1 HYDRA_FULL_ERROR=1
# bench: gpu_throughput.Throughput, loaded by the runs; the repository: vae_lab where it is not installed
export PYTHONPATH="$REPO/bench:$REPO${PYTHONPATH:+:$PYTHONPATH}"

ROWS=()
FAILED=0
record() { # record NAME CHECK PASS|FAIL|INFO DETAIL
    ROWS+=("$1|$2|$3|$4")
    [ "$3" = FAIL ] && FAILED=1
    echo "[$3] $1 / $2: $4"
}
summary() {
    echo
    echo "== summary ($SECONDS s; results in $RESULTS)"
    printf '%-7s %-22s %-5s %s\n' case check result detail
    local row name check result detail
    for row in "${ROWS[@]}"; do
        IFS='|' read -r name check result detail <<<"$row"
        printf '%-7s %-22s %-5s %s\n' "$name" "$check" "$result" "$detail"
    done
    if [ "$FAILED" = 0 ]; then echo "gpu_check: all checks passed"; else echo "gpu_check: FAILED"; fi
}
stop() { # stop: a check that the rest depends on failed
    summary
    exit 1
}
table_cell() { grep '^table: ' "$1" | tail -1 | cut -c8-; } # the last "table: ..." line of a log
overrides_of() {
    case $1 in
    gauss) echo "" ;; # the default: Gaussian VAE on dynamically binarised MNIST
    vamp) echo "prior=vamp" ;;
    vmf) echo "prior=vmf" ;;
    ptb) echo "data=ptb" ;;
    gauss32) echo "" ;; # the default model again, in fp32 and eager (training_mode_of)
    *) return 1 ;;
    esac
}
training_mode_of() { # the precision and compiling of a case's training run
    case $1 in
    gauss32) echo "trainer.precision=32-true compile=false" ;;
    *) echo "trainer.precision=bf16-mixed compile=true" ;;
    esac
}

echo "== machine"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi -L
    record machine nvidia-smi PASS "$(nvidia-smi -L | head -1 | cut -c1-70)"
elif [ "$DEVICE" = cpu ]; then
    record machine nvidia-smi INFO "absent (CPU rehearsal)"
else
    record machine nvidia-smi FAIL "nvidia-smi not found: no NVIDIA driver on this machine"
    stop
fi

echo "== python"
PY=${PYTHON:-python3}
PROBE="import torch, lightning, hydra, vae_lab.train"
if "$PY" -c "$PROBE" 2>/dev/null; then
    record python environment PASS "$(command -v "$PY"): imports vae_lab and its dependencies; nothing installed"
else
    VENV=${GPU_CHECK_VENV:-$REPO/bench/out/gpu_venv}
    echo "'$PY -c \"$PROBE\"' failed; installing the project into a fresh venv $VENV:"
    rm -rf "$VENV"
    "$PY" -m venv --system-site-packages "$VENV" || { record python venv FAIL "$PY -m venv failed"; stop; }
    echo "+ pip install -c constraints.txt -e ."
    if ! timeout 300 "$VENV/bin/pip" install -q -c constraints.txt -e .; then
        # Offline, pip cannot fetch setuptools for an isolated build; the venv's own may do.
        echo "+ pip install --no-build-isolation -c constraints.txt -e .   (retry)"
        timeout 300 "$VENV/bin/pip" install -q --no-build-isolation -c constraints.txt -e . ||
            { record python install FAIL "pip install -c constraints.txt -e . failed (no index or wheel?)"; stop; }
    fi
    PY=$VENV/bin/python
    "$PY" -c "$PROBE" || { record python install FAIL "installed, but '$PROBE' still fails"; stop; }
    record python environment PASS "installed into $VENV: $("$VENV/bin/pip" freeze 2>/dev/null |
        grep -iE '^(torch|lightning)==' | tr '\n' ' ')"
fi

"$PY" - <<'EOF'
import lightning, torch
print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
      f"lightning {lightning.__version__}")
if torch.cuda.is_available():
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        print(f"cuda:{i} {p.name}, {p.total_memory / 2**30:.0f} GiB, capability {p.major}.{p.minor}, "
              f"bf16 {torch.cuda.is_bf16_supported()}")
EOF
if [ "$DEVICE" != cpu ]; then
    if "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
        record machine "torch sees the GPU" PASS "$("$PY" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)')"
    else
        record machine "torch sees the GPU" FAIL "torch.cuda.is_available() is False (a CPU build of torch?)"
        stop
    fi
fi

echo "== data"
if [ -n "${VAE_LAB_DATA:-}" ]; then
    DATA_FROM="\$VAE_LAB_DATA"
elif [ -d ../shared/data ]; then
    DATA_FROM="../shared/data" VAE_LAB_DATA=$(cd ../shared/data && pwd)
elif [ -d shared/data ]; then
    DATA_FROM="shared/data in this copy" VAE_LAB_DATA=$REPO/shared/data
else
    record data root FAIL "no \$VAE_LAB_DATA, ../shared/data or shared/data; set VAE_LAB_DATA"
    stop
fi
export VAE_LAB_DATA
missing=""
for f in mnist/train-images-idx3-ubyte.gz mnist/t10k-images-idx3-ubyte.gz ptb/ptb.train.txt; do
    [ -f "$VAE_LAB_DATA/$f" ] || missing="$missing $f"
done
if [ -z "$missing" ]; then
    record data root PASS "$VAE_LAB_DATA (from $DATA_FROM)"
else
    record data root FAIL "$VAE_LAB_DATA (from $DATA_FROM) lacks$missing"
    stop
fi

echo "== first-step loss: CPU fp32 vs $DEVICE, same weights, batch and noise"
step_cases=()
for name in "${CASES[@]}"; do
    overrides_of "$name" >/dev/null || { record "$name" case FAIL "unknown case (gauss vamp vmf ptb gauss32)"; continue; }
    [ "$name" = gauss32 ] && continue # the model of gauss: its first step is checked there
    step_cases+=("$name=$(overrides_of "$name")")
done
log=$RESULTS/first_step.log
if [ ${#step_cases[@]} -gt 0 ]; then # one process for all cases: a torch import takes seconds
    timeout 300 "$PY" bench/gpu_check.py first-step --device "$DEVICE" "${step_cases[@]}" >"$log" 2>&1
    grep '^first-step' "$log" || tail -5 "$log"
    for case in "${step_cases[@]}"; do
        name=${case%%=*}
        if grep -q "^first-step PASS $name " "$log"; then result=PASS; else result=FAIL; fi
        cell=$(grep "^table $name: " "$log" | tail -1 | cut -d' ' -f3-)
        record "$name" "first-step loss" $result "${cell:-no result; see $log}"
    done
fi

echo "== training: trainer=$TRAINER precision=bf16-mixed compile=true (gauss32: 32-true, eager), $STEPS steps"
VAL_EVERY=$((STEPS / 30 > 0 ? STEPS / 30 : 1)) # counts groups of steps_per_call=10 batches: 3 checks
WARMUP=$((STEPS / 6 < 50 ? STEPS / 6 : 50))
for name in "${TRAIN_CASES[@]}"; do
    overrides_of "$name" >/dev/null || continue
    read -r -a overrides <<<"$(overrides_of "$name")"
    read -r -a mode <<<"$(training_mode_of "$name")"
    if [ "$SECONDS" -gt "$BUDGET" ]; then
        record "$name" train FAIL "skipped: past the ${BUDGET}s budget"
        continue
    fi
    run=$RESULTS/$name
    rm -rf "$run" "$run.log"
    args=(
        "trainer=$TRAINER" "${overrides[@]}" "${mode[@]}"
        "+trainer.max_steps=$STEPS" "+trainer.val_check_interval=$VAL_EVERY" +trainer.limit_val_batches=5
        data.module.limit_test=500 eval.iw_samples_val=10 eval.iw_samples_test=100
        "hydra.run.dir=$run"
        +callbacks.throughput._target_=gpu_throughput.Throughput "+callbacks.throughput.out=$run/throughput.json"
        "+callbacks.throughput.warmup_steps=$WARMUP"
    )
    echo "+ python -m vae_lab.train ${args[*]}"
    start=$SECONDS
    timeout "$RUN_TIMEOUT" "$PY" -m vae_lab.train "${args[@]}" >"$run.log" 2>&1
    rc=$?
    if [ $rc = 0 ]; then
        record "$name" train PASS "$((SECONDS - start)) s"
    else
        tail -20 "$run.log"
        [ $rc = 124 ] && why="timed out after ${RUN_TIMEOUT}s" || why="exit $rc"
        record "$name" train FAIL "$why; see $run.log"
    fi
    "$PY" bench/gpu_check.py metrics "$run" >"$run.metrics.log" 2>&1
    rc=$?
    grep -v '^table: ' "$run.metrics.log"
    if [ $rc = 0 ]; then result=PASS; else result=FAIL; fi
    record "$name" "test metrics finite" $result "$(table_cell "$run.metrics.log")"
    "$PY" bench/gpu_check.py rates "$run" >"$run.rates.log" 2>&1
    grep -v '^table: ' "$run.rates.log"
    record "$name" throughput INFO "$(table_cell "$run.rates.log")"
    [ "${GPU_CHECK_KEEP_CKPT:-0}" = 1 ] || find "$run" -name '*.ckpt' -delete 2>/dev/null
done

if [ "$FULL_TRAIN" = 1 ]; then
    echo "== make train's run: python -m vae_lab.train trainer=$TRAINER (the defaults: fp32, compile=auto)"
    run=$RESULTS/full_train
    rm -rf "$run" "$run.log"
    if [ "$DEVICE" = cpu ]; then default_extra=""; else default_extra="eval.iw_chunk_size=1000"; fi
    read -r -a extra <<<"${GPU_CHECK_FULL_TRAIN_ARGS-$default_extra}"
    start=$SECONDS
    timeout "${GPU_CHECK_FULL_TRAIN_TIMEOUT:-300}" "$PY" -m vae_lab.train "trainer=$TRAINER" "${extra[@]}" "hydra.run.dir=$run" \
        +callbacks.throughput._target_=gpu_throughput.Throughput "+callbacks.throughput.out=$run/throughput.json" \
        >"$run.log" 2>&1
    rc=$?
    if [ $rc = 0 ]; then
        record full train PASS "$((SECONDS - start)) s end to end${extra[*]:+ with ${extra[*]}}"
    else
        tail -20 "$run.log"
        [ $rc = 124 ] && why="timed out after ${GPU_CHECK_FULL_TRAIN_TIMEOUT:-300}s" || why="exit $rc"
        record full train FAIL "$why; see $run.log"
    fi
    grep -E "precision|compile=|linear_backend=" "$run.log" | head -5
    "$PY" bench/gpu_check.py metrics "$run" >"$run.metrics.log" 2>&1
    rc=$?
    grep -v '^table: ' "$run.metrics.log"
    if [ $rc = 0 ]; then result=PASS; else result=FAIL; fi
    record full "test metrics finite" $result "$(table_cell "$run.metrics.log")"
    "$PY" bench/gpu_check.py rates "$run" >"$run.rates.log" 2>&1
    grep -v '^table: ' "$run.rates.log"
    record full throughput INFO "$(table_cell "$run.rates.log")"
    [ "${GPU_CHECK_KEEP_CKPT:-0}" = 1 ] || find "$run" -name '*.ckpt' -delete 2>/dev/null
fi

summary
exit "$FAILED"
