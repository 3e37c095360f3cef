#!/usr/bin/env bash
# Data-parallel / ZeRO equivalence grid (issue 6 acceptance): for every (np, expert_parallel, zero_stage, offload),
# `mpirun -np NP zcode train` on m3-tiny for STEPS steps must log at every step the loss of ONE process trained on the
# same global batch (grad_accumulation = NP), within 1e-5 relative (fp32). Prints one row per configuration with the
# largest relative loss difference over the steps, and PASS/FAIL (or the one-line reason a configuration was refused).
#   bench/parallel-equivalence.sh [STEPS=30] [NPS="2 4"] [EPS="1 2 4"]
# Oversubscribes the machine (--oversubscribe), one thread per rank; runs go to $BENCH_DIR (default /tmp/zcode-par-eq).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
steps="${1:-30}"
nps="${2:-2 4}"
eps="${3:-1 2 4}"
dir="${BENCH_DIR:-/tmp/zcode-par-eq}"
command -v mpirun >/dev/null || { echo "mpirun not found (scripts/setup installs Open MPI)" >&2; exit 2; }
"$repo/scripts/zcode" --help >/dev/null   # builds the CLI when sources changed
dll="$repo/src/ZCode.Cli/bin/Release/net10.0/zcode.dll"
rm -rf "$dir"; mkdir -p "$dir"
common=(--set "train.max_steps=$steps" --set train.tokens_per_batch=2048 --set train.threads=1 --set train.log_interval=1 --set train.save_interval=0)

losses() { grep -o '"loss":[^,]*' "$1/metrics.jsonl" | cut -d: -f2; }

# max |a-b|/|b| over the steps, or "steps?" when the runs logged different step counts
maxrel() {
  paste <(losses "$1") <(losses "$2") | awk -v n="$steps" '
    { c++; d = $1 - $2; if (d < 0) d = -d; r = d / ($2 < 0 ? -$2 : $2); if (r > m) m = r }
    END { if (c != n) print "steps?"; else printf "%.3e\n", m }'
}

printf '%-4s %-4s %-5s %-8s %-12s %s\n' np ep zero offload max_rel_diff result
for np in $nps; do
  ref="$dir/ref-np$np"
  dotnet "$dll" train "${common[@]}" --set "train.grad_accumulation=$np" --output "$ref" > "$ref.log" 2>&1 \
    || { echo "reference run for np=$np failed; see $ref.log" >&2; exit 1; }
  for ep in $eps; do
    [ $((np % ep)) -eq 0 ] || continue
    for zero in 0 1 2; do
      for offload in false true; do
        [ "$zero" -eq 0 ] && [ "$offload" = true ] && continue   # offload moves the ZeRO shard: stage >= 1
        out="$dir/np$np-ep$ep-z$zero-$offload"
        if mpirun --allow-run-as-root --oversubscribe -np "$np" dotnet "$dll" train "${common[@]}" \
             --set "parallel.expert_parallel=$ep" --set "parallel.zero_stage=$zero" --set "parallel.offload_optimizer=$offload" \
             --output "$out" > "$out.log" 2>&1; then
          rel="$(maxrel "$out" "$ref")"
          verdict="$(awk -v r="$rel" 'BEGIN { print (r != "steps?" && r + 0 <= 1e-5) ? "PASS" : "FAIL" }')"
        else
          rel="-"
          verdict="refused/failed: $(grep -v '^\[' "$out.log" | grep -m1 -E 'parallel\.|error|rank' || tail -n1 "$out.log")"
        fi
        printf '%-4s %-4s %-5s %-8s %-12s %s\n' "$np" "$ep" "$zero" "$offload" "$rel" "$verdict"
      done
    done
  done
done
