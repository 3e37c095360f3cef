#!/usr/bin/env bash
# Expert parallelism: one MoE layer with its experts split over P ranks (two all-to-alls forward, two backward) against
# the same layer with all experts on every rank, under `mpirun -np P` (one thread per rank), for P = 2 and, with 4+
# cores, 4. Each rank routes TOKENS tokens; both layers must give the same output (max_abs_diff, checked by the
# command). Prints one JSON line per run (ms_expert_parallel, ms_replicated, ms_all_to_all: slowest rank's medians).
# Run it on a quiet machine.
#   bench/expert-parallel.sh [TOKENS=4096] [D=512] [FFN=2048] [EXPERTS=8] [TOP_K=2] [REPEATS=10]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tokens="${1:-4096}"; d="${2:-512}"; ffn="${3:-2048}"; experts="${4:-8}"; topk="${5:-2}"; repeats="${6:-10}"
command -v mpirun >/dev/null || { echo "mpirun not found (scripts/setup installs Open MPI)" >&2; exit 2; }
"$repo/scripts/zcode" --help >/dev/null
dll="$repo/src/ZCode.Cli/bin/Release/net10.0/zcode.dll"
ranks=(2)
[ "$(nproc)" -ge 4 ] && ranks+=(4)
for p in "${ranks[@]}"; do
  echo "P=$p:"
  mpirun --allow-run-as-root --oversubscribe -np "$p" dotnet "$dll" bench moe --expert-parallel --threads 1 \
    --tokens "$tokens" --d "$d" --ffn "$ffn" --experts "$experts" --top-k "$topk" --capacity-factor 1.25 \
    --repeats "$repeats" --json
done
