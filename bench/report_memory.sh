#!/usr/bin/env bash
# Server memory while exporting (docs/REPORTS.md, "Memory"): starts fieldsyncd on an existing
# database, runs exports one after another with the fieldsync CLI, and samples the server's
# VmRSS every 0.1 s from /proc; the peak of each export comes from VmHWM, reset before it
# (/proc/PID/clear_refs). Prints one line per export.
#
#   bench/report_db --db /work/tmp-1m/fieldsync.db --records 1000000     # once, minutes
#   bench/report_memory.sh BUILD_DIR /work/tmp-1m/fieldsync.db /work/tmp-1m/out
set -euo pipefail
build=${1:?build dir}
db=${2:?database}
out=${3:?output dir}
port=${PORT:-50977}
mkdir -p "$out"
token=$("$build/server/fieldsyncd" --db "$db" --create-admin-token 2>/dev/null | tail -1)
"$build/server/fieldsyncd" --db "$db" --listen "127.0.0.1:$port" >"$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  grep -q listening "$out/server.log" 2>/dev/null && break
  sleep 0.5
done
kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$server/status"; }
echo "database: $(du -h "$db" | cut -f1) ($db), server pid $server"
echo "idle after start: VmRSS $(kb VmRSS) kB, VmHWM $(kb VmHWM) kB"
export FIELDSYNC_SERVER=127.0.0.1:$port FIELDSYNC_TOKEN=$token
run() {  # name, then the export's arguments
  local name=$1
  shift
  echo 5 >"/proc/$server/clear_refs"
  local before max=0 rss
  before=$(kb VmRSS)
  local start end
  start=$(date +%s.%N)
  "$build/cli/fieldsync" report export "$@" -o "$out/$name" >"$out/$name.log" 2>&1 &
  local cli=$!
  while kill -0 $cli 2>/dev/null; do
    rss=$(kb VmRSS)
    ((rss > max)) && max=$rss
    sleep 0.1
  done
  wait $cli || { echo "$name: export failed: $(cat "$out/$name.log")"; return; }
  end=$(date +%s.%N)
  printf '%-22s %8.1f s %12s bytes  rows %-40s RSS before %7s kB, max sampled %7s kB, VmHWM %7s kB, after %7s kB\n' \
    "$name" "$(echo "$end - $start" | bc)" "$(stat -c %s "$out/$name")" \
    "$(grep -o '([a-z]*, [0-9][^)]*' "$out/$name.log" | head -1 | cut -c1-40)" \
    "$before" "$max" "$(kb VmHWM)" "$(kb VmRSS)"
}
# EXPORTS picks some of: wells.csv expenditures.csv wells.xlsx expenditures.xlsx audit.csv
# audit.jsonl (default: all of them).
for name in ${EXPORTS:-wells.csv expenditures.csv wells.xlsx expenditures.xlsx audit.csv audit.jsonl}; do
  table=${name%%.*}
  run "$name" --table "$table" --format "${name##*.}"
done
echo "end: VmRSS $(kb VmRSS) kB"
