#!/usr/bin/env bash
# GPU measurements for issue 7 (run on a Linux x86-64 host with an NVIDIA GPU and a pip torch==2.10.* install):
# builds the bundle, checks it against that LibTorch, then times training steps in fp32 and bf16 on CUDA and trains
# m3-base for a few hundred steps. Prints JSON lines; record them in bench/RESULTS.md.
#
#   bench/gpu.sh [TORCH_LIB_DIR] [STEPS]     (default: the lib folder of `python3 -c 'import torch'`, 300 steps)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lib="${1:-$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')}"
steps="${2:-300}"
"$repo/scripts/bundle-linux" --test "$lib"
bundle="$repo/dist/zcode-linux-x64"
export ZCODE_LIBTORCH="$lib"
cd "$bundle"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
for dtype in fp32 bf16; do
  ./zcode bench train --config configs/m3-base.yaml --device cuda --dtype "$dtype" --batch 32 --src-len 128 --tgt-len 128 --steps 20 --json
done
out="$(mktemp -d)"
./zcode train --config configs/m3-base.yaml --set train.device=cuda --set train.dtype=bf16 --set train.max_steps="$steps" \
  --set train.log_interval=50 --set train.save_interval=0 --set data.shard_dir="$out/shards" --output "$out/run" > "$out/train.txt" 2>&1
tail -n 3 "$out/run/metrics.jsonl" | cut -c1-200
grep -E "device|LibTorch from|finished" "$out/run/train.log"
