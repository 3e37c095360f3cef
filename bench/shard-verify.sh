#!/usr/bin/env bash
# Time to the first training step with shard verification on and off (issue 17 acceptance), alternated.
#   bench/shard-verify.sh [SIZE_MB=1024] [REPEATS=3]
# Uses the corpus of bench/data-prepare.sh (SIZE_MB of data-samples/ text repeated, in $BENCH_DIR, default
# /tmp/zcode-bench; built here the same way when missing) as the monolingual text of a DAE-only m3-tiny run, prepares
# its shards once, then REPEATS times trains one step into a fresh directory with the checksums on and with
# ZCODE_VERIFY_SHARDS=0 (sizes only). Reports seconds from the process start to the "step 1/1" log line, the
# verification's own time and how long the first step waited for it (from train.log), and the CPU seconds of the run.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
size_mb="${1:-1024}"
repeats="${2:-3}"
dir="${BENCH_DIR:-/tmp/zcode-bench}"
mkdir -p "$dir"

corpus="$dir/corpus.txt"
if [ ! -f "$corpus" ] || [ "$(stat -c %s "$corpus")" -lt $((size_mb * 1048576)) ]; then
  echo "building ${size_mb} MiB corpus in $corpus ..." >&2
  cat "$repo"/data-samples/ntrex128/train/*.txt "$repo"/data-samples/ntrex128/valid/*.txt "$repo"/data-samples/udhr/*.txt > "$dir/seed.txt"
  : > "$corpus"
  while [ "$(stat -c %s "$corpus")" -lt $((size_mb * 1048576)) ]; do cat "$dir/seed.txt" >> "$corpus"; done
fi
cat > "$dir/verify.yaml" <<YAML
data:
  spm_model: $repo/data-samples/spm.model
  languages: []
  parallel: []
  valid: []
  monolingual:
    - {lang: eng_Latn, path: $corpus}
  shard_dir: $dir/verify-shards
tasks:
  mt: {weight: 0.0}
  dae: {weight: 1.0}
train:
  max_steps: 1
  log_interval: 1
YAML

dotnet build "$repo/src/ZCode.Cli" -c Release -v q -nologo >/dev/null
zcode="$repo/src/ZCode.Cli/bin/Release/net10.0/zcode.dll"
dotnet "$zcode" data prepare --config "$dir/verify.yaml" | tail -n 3
du -cb "$dir"/verify-shards/*.ids "$dir"/verify-shards/*.idx "$dir"/verify-shards/*.keep | tail -n 1 | awk '{printf "shard files: %.0f MiB\n", $1 / 1048576}'

first_step() { # label: prints "label seconds_to_step_1 check_s waited_s cpu_s"
  local out="$dir/verify-run"
  rm -rf "$out"
  python3 - "$1" "$zcode" "$dir/verify.yaml" "$out" <<'PY'
import re, resource, subprocess, sys, time
label, zcode, config, out = sys.argv[1:]
start = time.monotonic()
p = subprocess.Popen(["dotnet", zcode, "train", "--config", config, "--output", out],
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
first = None
for line in p.stdout:
    if first is None and " step 1/1 " in line:
        first = time.monotonic() - start
if p.wait() != 0 or first is None:
    sys.exit(f"{label}: train failed")
log = open(f"{out}/train.log").read()
m = re.search(r"checked in ([0-9.]+) s; the first step waited ([0-9.]+) s", log)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(label, f"{first:.2f}", *(m.groups() if m else ("-", "-")), f"{usage.ru_utime + usage.ru_stime:.2f}")
PY
}
echo "label seconds_to_step_1 check_s waited_s cpu_s (user+sys of the whole one-step run); cores: $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$repeats"); do
  first_step verify_on
  ZCODE_VERIFY_SHARDS=0 first_step verify_off
done | tee "$dir/verify-results.txt"
awk '{ n[$1]++; s[$1] += $2; c[$1] += $5; if (!($1 in min) || $2 < min[$1]) min[$1] = $2 }
     END { for (k in n) printf "%s: time to step 1 min %.2f s, mean %.2f s; mean cpu %.2f s; over %d runs\n", k, min[k], s[k] / n[k], c[k] / n[k], n[k] }' "$dir/verify-results.txt"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
