#!/usr/bin/env bash
# Pruned vs unpruned decoding speed (issue: expert pruning for fast inference). Trains an 8-expert model whose expert
# weights dominate a decoding step's memory traffic (m3-tiny with d_model 512, ffn 8192 and every FFN an MoE layer:
# 32 MiB per expert, 256 MiB per MoE layer), prunes it to its 4 most used experts per layer on the validation data,
# and times greedy decoding of both in one process, alternating passes (ExpertProbe decode-time), 1 thread.
# Decoding speed does not depend on how well the model is trained, so a few steps suffice.
# Usage: bench/pruned-decode.sh [STEPS=5] [SENTENCES=32] [FFN=8192]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
steps="${1:-5}"
sentences="${2:-32}"
ffn="${3:-8192}"
dotnet build "$repo/src/ZCode.Cli/ZCode.Cli.csproj" -c Release --nologo -v q -clp:ErrorsOnly >&2
dotnet build "$repo/bench/ExpertProbe/ExpertProbe.csproj" -c Release --nologo -v q -clp:ErrorsOnly >&2
z() { dotnet "$repo/src/ZCode.Cli/bin/Release/net10.0/zcode.dll" "$@"; }
probe() { dotnet "$repo/bench/ExpertProbe/bin/Release/net10.0/ExpertProbe.dll" "$@"; }
w="$(mktemp -d "${TMPDIR:-/tmp}/zcode-prune-XXXXXX")"
trap 'rm -rf "$w"' EXIT
z train --set model.d_model=512 --set model.ffn_dim="$ffn" --set model.moe.every_n_layers=1 --set model.heads=8 --set model.moe.experts=8 \
    --set train.lr=0.001 --set train.tokens_per_batch=1024 --set train.max_steps="$steps" --set train.log_interval=20 \
    --set train.save_interval=0 --output "$w/full" >/dev/null
z prune-experts --checkpoint "$w/full" --keep 4 --out "$w/pruned"
probe decode-time "$w/full" "$w/pruned" --sentences "$sentences" --passes 3
