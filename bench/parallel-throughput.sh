#!/usr/bin/env bash
# Data-parallel throughput (issue 6 acceptance: np=2 >= 1.6x np=1 on a 2-core machine, one thread per rank).
# Trains m3-tiny on the same global batch twice: one process with grad_accumulation 2 (the same micro-batches one
# after the other) and `mpirun -np 2` with one micro-batch per rank; both with train.threads=1. Throughput is global
# target tokens per second of wall time over the steps after WARMUP (from rank 0's metrics.jsonl: total_tokens and
# elapsed_s), so startup and the first steps do not count. Run it on a quiet machine.
#   bench/parallel-throughput.sh [STEPS=60] [WARMUP=10] [TOKENS_PER_BATCH=4096] [ZERO_STAGE=0]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
steps="${1:-60}"
warmup="${2:-10}"
tokens="${3:-4096}"
zero="${4:-0}"
dir="${BENCH_DIR:-/tmp/zcode-par-tput}"
command -v mpirun >/dev/null || { echo "mpirun not found (scripts/setup installs Open MPI)" >&2; exit 2; }
"$repo/scripts/zcode" --help >/dev/null
dll="$repo/src/ZCode.Cli/bin/Release/net10.0/zcode.dll"
rm -rf "$dir"; mkdir -p "$dir"
common=(--set "train.max_steps=$steps" --set "train.tokens_per_batch=$tokens" --set train.threads=1 --set train.log_interval=1
        --set train.save_interval=0 --set "parallel.zero_stage=$zero")

# tokens/s between step WARMUP and the last step
rate() {
  awk -v w="$warmup" '
    { match($0, /"step":[0-9]+/); s = substr($0, RSTART + 7, RLENGTH - 7) + 0
      match($0, /"total_tokens":[0-9]+/); t = substr($0, RSTART + 15, RLENGTH - 15) + 0
      match($0, /"elapsed_s":[0-9.]+/); e = substr($0, RSTART + 12, RLENGTH - 12) + 0
      if (s == w) { t0 = t; e0 = e } last_t = t; last_e = e }
    END { printf "%.1f\n", (last_t - t0) / (last_e - e0) }' "$1/metrics.jsonl"
}

dotnet "$dll" train "${common[@]}" --set train.grad_accumulation=2 --output "$dir/np1" > "$dir/np1.log" 2>&1
mpirun --allow-run-as-root --oversubscribe -np 2 dotnet "$dll" train "${common[@]}" --output "$dir/np2" > "$dir/np2.log" 2>&1
one="$(rate "$dir/np1")"
two="$(rate "$dir/np2")"
echo "np=1 (1 thread, grad_accumulation 2): $one tokens/s"
echo "np=2 (1 thread each):                  $two tokens/s"
awk -v a="$one" -v b="$two" 'BEGIN { printf "speed-up: %.2fx (target >= 1.6x)\n", b / a }'
