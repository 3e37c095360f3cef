#!/usr/bin/env bash
# zcode's training step against the PyTorch eager peer (bench/peer_torch.py), back to back in one call, at the shapes
# of issue "CPU speed and memory": d_model 256, ffn 1024, 4+4 layers, 8 experts every 2nd layer, top-2, capacity
# factor 1.25, vocab 8000, batch 16 x (64 + 64) tokens, 2 threads. Prints the peer's fp32 line, zcode's lines for its
# default dtype (auto) and for fp32, each with tokens/s; zcode's also give model FLOPs and the matmul rate probed after
# every timed step in the same process (mfu: the median of each step's ratio to its own probe).
# Usage: bench/train-vs-peer.sh [ROUNDS]   (needs: apt-get install python3-torch libopenblas0-pthread)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds="${1:-2}"
"$repo/scripts/zcode" --help >/dev/null   # builds once, before anything is timed
zcode() { "$repo/scripts/zcode" "$@"; }   # as users run it: with the allocator scripts/zcode preloads
shape=(--set model.d_model=256 --set model.ffn_dim=1024 --set model.heads=4 --set model.encoder_layers=4
       --set model.decoder_layers=4 --set model.moe.experts=8 --set model.moe.every_n_layers=2 --set model.moe.top_k=2
       --set model.moe.capacity_factor=1.25 --set model.vocab_size=8000)
for r in $(seq "$rounds"); do
  echo "round $r"
  # Debian's torch with OpenBLAS's pthread build; the core-type pin some images set slows it, so it is dropped.
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 "$repo/bench/peer_torch.py" --d 256 --ffn 1024 --heads 4 \
    --enc 4 --dec 4 --experts 8 --every 2 --topk 2 --cf 1.25 --vocab 8000 --batch 16 --src-len 64 --tgt-len 64 \
    --steps 10 --warmup 20 --threads 2
  zcode bench train "${shape[@]}" --batch 16 --src-len 64 --tgt-len 64 --steps 10 --threads 2 --json
  zcode bench train "${shape[@]}" --batch 16 --src-len 64 --tgt-len 64 --steps 10 --threads 2 --dtype fp32 --json
done
