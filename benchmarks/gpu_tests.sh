#!/bin/bash
# The Triton op tests on the GPU, in N parallel shards (each test compiles its own kernel: CPU-bound).
# Usage: benchmarks/gpu_tests.sh [N] ; logs in ${OUT:-/tmp}/gpu-tests-*.log
N=${1:-12}
LOG=${OUT:-/tmp}
cd "$(dirname "$0")/.."
pids=()
for k in $(seq 0 $((N - 1))); do
  TRITON_SHARD=$k/$N PYTHONPATH=.:$PYTHONPATH python3 -m pytest tests/inductor/triton -q -p no:cacheprovider -p tests.inductor.triton.shard -W ignore > "$LOG/gpu-tests-$k.log" 2>&1 &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
grep -h -E "passed|failed|error" "$LOG"/gpu-tests-*.log
grep -h "^FAILED\|^ERROR" "$LOG"/gpu-tests-*.log | head -40
exit $rc
