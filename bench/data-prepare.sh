#!/usr/bin/env bash
# Data-prepare throughput vs spm_encode (issue 8 acceptance), measured back to back.
#   bench/data-prepare.sh [SIZE_MB=1024] [REPEATS=3]
# Builds a SIZE_MB corpus in $BENCH_DIR (default /tmp/zcode-bench; never committed) by repeating every text file of
# data-samples/, then REPEATS times: (a) spm_encode --output_format=id as 2 parallel processes over the two halves
# (ids to /dev/null), (b) `zcode data prepare --force` on the whole corpus (all cores). Reports wall seconds and peak
# RSS (/usr/bin/time -v) of each, and the minimum over the repeats.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
size_mb="${1:-1024}"
repeats="${2:-3}"
dir="${BENCH_DIR:-/tmp/zcode-bench}"
model="$repo/data-samples/spm.model"
mkdir -p "$dir"
command -v spm_encode >/dev/null || { echo "spm_encode not found (apt-get install sentencepiece)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time not found (apt-get install time)" >&2; exit 2; }

corpus="$dir/corpus.txt"
if [ ! -f "$corpus" ] || [ "$(stat -c %s "$corpus")" -lt $((size_mb * 1048576)) ]; then
  echo "building ${size_mb} MiB corpus in $corpus ..." >&2
  seed="$dir/seed.txt"
  cat "$repo"/data-samples/ntrex128/train/*.txt "$repo"/data-samples/ntrex128/valid/*.txt "$repo"/data-samples/udhr/*.txt > "$seed"
  : > "$corpus"
  while [ "$(stat -c %s "$corpus")" -lt $((size_mb * 1048576)) ]; do cat "$seed" >> "$corpus"; done
  lines=$(wc -l < "$corpus")
  head -n $((lines / 2)) "$corpus" > "$dir/half1.txt"
  tail -n +$((lines / 2 + 1)) "$corpus" > "$dir/half2.txt"
fi
cat > "$dir/bench.yaml" <<YAML
data:
  spm_model: $model
  languages: []
  parallel: []
  valid: []
  monolingual:
    - {lang: eng_Latn, path: $corpus}
  shard_dir: $dir/shards
YAML

dotnet build "$repo/src/ZCode.Cli" -c Release -v q -nologo >/dev/null
zcode="$repo/src/ZCode.Cli/bin/Release/net10.0/zcode.dll"
measure() { # label, command...: prints "label seconds maxrss_kb"
  local label="$1"; shift
  /usr/bin/time -v -o "$dir/time.txt" "$@" >/dev/null || { echo "$label failed:" >&2; tail -3 "$dir/time.txt" >&2; exit 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$dir/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$dir/time.txt")
  echo "$label $wall $rss"
}
spm_pair() {
  spm_encode --model="$model" --output_format=id < "$dir/half1.txt" > /dev/null &
  spm_encode --model="$model" --output_format=id < "$dir/half2.txt" > /dev/null
  wait
}
export -f spm_pair; export model dir
echo "corpus: $(stat -c %s "$corpus") bytes, $(wc -l < "$corpus") lines; cores: $(nproc)"
for r in $(seq "$repeats"); do
  measure "spm_encode_x2" bash -c spm_pair
  measure "zcode_prepare" dotnet "$zcode" data prepare --config "$dir/bench.yaml" --force
done | tee "$dir/results.txt"
awk '{ if (!($1 in min) || $2 < min[$1]) min[$1] = $2; if ($3 > rss[$1]) rss[$1] = $3 }
     END { for (k in min) printf "min %s: %.2f s (max RSS %.0f MiB)\n", k, min[k], rss[k] / 1024;
           printf "ratio spm_encode_x2 / zcode_prepare (min/min): %.2f (>= 1 means zcode is at least as fast)\n", min["spm_encode_x2"] / min["zcode_prepare"] }' "$dir/results.txt"
