#!/usr/bin/env bash
# Acceptance check (issue 6): "Killing one rank mid-run: the others exit non-zero within 2x the timeout, with the
# failing rank named". Starts `zcode bench comm` on N ranks with collective timeout T, SIGKILLs one rank from outside
# while collectives run, and reports how long the job took to end after the kill, its exit code and the message.
# Then the launcher-independent path: one rank stops responding (--fail-mode stall) and the others must time out.
# Usage: bench/comm-kill.sh [ranks=3] [timeout_s=30] [victim=1]
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ranks="${1:-3}"; timeout_s="${2:-30}"; victim="${3:-1}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1   # root in containers; harmless otherwise
"$repo/scripts/zcode" --help >/dev/null   # build once before timing anything
dll="$repo/src/ZCode.Cli/bin/Release/net10.0/zcode.dll"
log="$(mktemp)"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# 1. SIGKILL from outside, mid-run (the bench runs 1,000,000 iterations: it only ends because of the kill).
mpirun --oversubscribe -np "$ranks" dotnet "$dll" bench comm --size-mb 1 --iters 1000000 \
  --set parallel.timeout_s="$timeout_s" >"$log" 2>&1 &
launcher=$!
pid=""
for _ in $(seq 1 600); do   # find the victim rank's process by its Open MPI rank variable
  for p in $(pgrep -P "$launcher" 2>/dev/null); do
    if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$victim"; then pid=$p; fi
  done
  [ -n "$pid" ] && break
  sleep 0.1
done
[ -n "$pid" ] || { echo "comm-kill: rank $victim never started"; cat "$log"; kill "$launcher"; exit 1; }
sleep 15   # let every rank start up and enter the collective loop
t0="$(now)"
kill -9 "$pid"
wait "$launcher"; rc=$?
t1="$(now)"
echo "SIGKILL of rank $victim (pid $pid) on $ranks ranks, parallel.timeout_s=$timeout_s:"
echo "  job ended $(elapsed "$t0" "$t1") s after the kill (limit 2x timeout = $((2 * timeout_s)) s), exit code $rc"
echo "  launcher/rank messages:"; grep -E "rank|signal|timed out" "$log" | sed 's/^/    /'
ok=1
[ "$rc" -ne 0 ] || { echo "  FAIL: exit code 0"; ok=0; }
grep -q "rank $victim" "$log" || { echo "  FAIL: rank $victim not named"; ok=0; }
awk -v d="$(elapsed "$t0" "$t1")" -v l="$((2 * timeout_s))" 'BEGIN { exit !(d <= l) }' || { echo "  FAIL: slower than 2x timeout"; ok=0; }

# 2. A rank that stops responding (no process exit for the launcher to notice): the collective timeout ends the job.
t0="$(now)"
mpirun --oversubscribe -np "$ranks" dotnet "$dll" bench comm --size-mb 1 --iters 3 --fail-rank "$victim" \
  --fail-mode stall --set parallel.timeout_s="$timeout_s" >"$log" 2>&1
rc=$?
t1="$(now)"
echo "rank $victim stalls on $ranks ranks, parallel.timeout_s=$timeout_s:"
echo "  job ended $(elapsed "$t0" "$t1") s after launch (includes start-up; limit ~ start-up + timeout), exit code $rc"
grep -E "timed out" "$log" | sed 's/^/    /'
[ "$rc" -ne 0 ] && grep -q "timed out after $timeout_s s" "$log" || { echo "  FAIL: no timeout"; ok=0; }
rm -f "$log"
[ "$ok" = 1 ] && echo "comm-kill: PASS" || { echo "comm-kill: FAIL"; exit 1; }
