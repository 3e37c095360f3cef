#!/usr/bin/env bash
# Checkpoint I/O benchmark: save then load a v1 checkpoint of configs/m3-base.yaml (weights + AdamW state),
# each in its own process so each peak RSS belongs to one operation. Usage: bench/checkpoint-io.sh [CONFIG] [--weights-only]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dotnet build "$repo/bench/CheckpointIo/CheckpointIo.csproj" -c Release --nologo -v q -clp:ErrorsOnly >&2
dll="$repo/bench/CheckpointIo/bin/Release/net10.0/CheckpointIo.dll"
# BENCH_DIR picks the file system (default: $TMPDIR or /tmp; /dev/shm shows the software ceiling without a disk).
dir="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/zcode-ckpt-bench-XXXXXX")"
trap 'rm -rf "$dir"' EXIT
dotnet "$dll" save "$dir" "$@"
dotnet "$dll" load "$dir" "$@"
