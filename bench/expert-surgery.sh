#!/usr/bin/env bash
# Aggregation of Experts and pruning on m3-tiny: trains two 4-expert models (seeds 1, 2), aggregates them into
# 8 experts, compares validation NLL at step 0 with the inputs', trains the aggregate 50 steps (--init-from),
# prunes it back to 4 experts and times greedy decoding of both. Usage: bench/expert-surgery.sh [STEPS]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
steps="${1:-100}"
dotnet build "$repo/src/ZCode.Cli/ZCode.Cli.csproj" -c Release --nologo -v q -clp:ErrorsOnly >&2
dotnet build "$repo/bench/ExpertProbe/ExpertProbe.csproj" -c Release --nologo -v q -clp:ErrorsOnly >&2
z() { dotnet "$repo/src/ZCode.Cli/bin/Release/net10.0/zcode.dll" "$@"; }
probe() { dotnet "$repo/bench/ExpertProbe/bin/Release/net10.0/ExpertProbe.dll" "$@"; }
w="$(mktemp -d "${TMPDIR:-/tmp}/zcode-aoe-XXXXXX")"
trap 'rm -rf "$w"' EXIT
common=(--set train.tokens_per_batch=1024 --set train.threads=1)
z train "${common[@]}" --set train.max_steps="$steps" --set train.seed=1 --set train.log_interval=50 --output "$w/a" >/dev/null
z train "${common[@]}" --set train.max_steps="$steps" --set train.seed=2 --set train.log_interval=50 --output "$w/b" >/dev/null
z aggregate-experts --from "$w/a" --from "$w/b" --out "$w/c"
probe valid-loss "$w/a"
probe valid-loss "$w/b"
probe valid-loss "$w/c"
z train "${common[@]}" --init-from "$w/c" --set train.max_steps=50 --set train.log_interval=1 --output "$w/c-train" >/dev/null
python3 - "$w/c-train/metrics.jsonl" <<'PY'
import json, sys
m = [json.loads(l) for l in open(sys.argv[1])]
first, last = m[:5], m[-5:]
avg = lambda xs: sum(x["nll_loss"] for x in xs) / len(xs)
print(json.dumps({"aggregate_train_steps": len(m), "nll_first5": round(avg(first), 4), "nll_last5": round(avg(last), 4)}))
PY
probe valid-loss "$w/c-train"
z prune-experts --checkpoint "$w/c" --keep 4 --out "$w/p"
probe valid-loss "$w/p"
probe decode-time "$w/c" 64
probe decode-time "$w/p" 64
