#!/usr/bin/env bash
# Pruned vs unpruned decoding speed (issue: expert pruning for fast inference). Trains an 8-expert top-2 model whose
# expert weights dominate a decoding step (d_model 256, ffn 4096, every FFN an MoE layer: 8 MiB per expert), prunes it
# to its 4 most used experts per layer on the validation data, and times decoding of both in one process, alternating
# passes (ExpertProbe decode-time, 1 thread), greedy and beam 4, small and large batches.
# Training matters: the packed expert path reads only the experts a step's tokens reach, so pruning pays only when the
# unpruned model spreads a step over more experts than are kept. Briefly trained or top-1 models send a whole step
# to 2-3 experts (ExpertProbe prints experts_touched_per_moe_call); this top-2 model after 300 steps reaches 5-8.
# Takes about 20 minutes on 2 cores. Usage: bench/pruned-decode.sh [STEPS=300] [SENTENCES=100]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
steps="${1:-300}"
sentences="${2:-100}"
dotnet build "$repo/src/ZCode.Cli/ZCode.Cli.csproj" -c Release --nologo -v q -clp:ErrorsOnly >&2
dotnet build "$repo/bench/ExpertProbe/ExpertProbe.csproj" -c Release --nologo -v q -clp:ErrorsOnly >&2
z() { dotnet "$repo/src/ZCode.Cli/bin/Release/net10.0/zcode.dll" "$@"; }
probe() { dotnet "$repo/bench/ExpertProbe/bin/Release/net10.0/ExpertProbe.dll" "$@"; }
w="$(mktemp -d "${TMPDIR:-/tmp}/zcode-prune-XXXXXX")"
trap 'rm -rf "$w"' EXIT
z train --set model.d_model=256 --set model.ffn_dim=4096 --set model.moe.every_n_layers=1 --set model.moe.experts=8 \
    --set model.moe.top_k=2 --set train.lr=0.002 --set train.max_steps="$steps" --set train.log_interval=20 \
    --set train.save_interval=0 --output "$w/full" >/dev/null
z prune-experts --checkpoint "$w/full" --keep 4 --out "$w/pruned"
for args in "--beam 1 --batch-tokens 512" "--beam 4 --batch-tokens 512" "--beam 4 --batch-tokens 4096"; do
  # shellcheck disable=SC2086
  probe decode-time "$w/full" "$w/pruned" --sentences "$sentences" --passes 3 $args
done
for c in "$w/full" "$w/pruned"; do
  z eval --task mt --checkpoint "$c" --pairs en-de,de-en,en-zh --output-dir "$w/eval-$(basename "$c")" 2>&1 | grep -E 'BLEU .* tok/s'
done
