#!/usr/bin/env bash
# The checks that need a GPU, as one short script (about 9 minutes at most): tests/test_cuda.py on CUDA, then every benchmark
# with --device cuda. Run from the repository root on a machine with an NVIDIA GPU and a CUDA build of torch:
#
#     bash scripts/gpu_check.sh    # in $OUT (default ./gpu_check): summary.txt, env.txt, tests.log, results.tgz
#
# results.tgz holds every step's log and the benchmark tables and plots. DEVICE=cpu QUICK=1 SSMKIT_TEST_DEVICE=cpu
# dry-runs the script on a machine without a GPU (tiny benchmark sizes).
#
# It uses the python3 on PATH with PYTHONPATH=src (no install step: the GPU machines here have torch but no network).
# Each step has its own time limit, so one slow benchmark cannot starve the rest; a step that fails or times out is
# reported in summary.txt and the script goes on.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check}
mkdir -p "$OUT/bench" "$OUT/logs"
export PYTHONPATH=src PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:+--quick}
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $OUT/logs/NAME.log, record the outcome
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout "$limit" "$@" > "$OUT/logs/$name.log" 2>&1
    local rc=$?
    local verdict="ok"
    [ $rc -eq 124 ] && verdict="TIMED OUT after ${limit}s"
    [ $rc -ne 0 ] && [ $rc -ne 124 ] && verdict="FAILED (exit $rc)"
    echo "$name: $verdict, $((SECONDS - start)) s" | tee -a "$SUMMARY"
}

{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

step tests 200 $PY -m pytest -q -x -p no:cacheprovider tests/test_cuda.py
cp "$OUT/logs/tests.log" "$OUT/tests.log"
for bench in kernels:60 layers:90 streaming:60 scan:45 flops:20; do
    step "bench_${bench%%:*}" "${bench##*:}" $PY -m ssmkit bench "${bench%%:*}" --device "$DEVICE" $QUICK --out "$OUT/bench"
done
step bench_train_step 45 $PY -m ssmkit.bench.train_step --device "$DEVICE" $QUICK --d-models 128 256 --threads 1 \
    --out "$OUT/bench"
tar czf "$OUT/results.tgz" -C "$OUT" bench logs && rm -rf "$OUT/bench" "$OUT/logs"
cat "$SUMMARY"
