#!/usr/bin/env bash
# Server memory while a fresh device pulls a whole partner's scope (docs/PERFORMANCE.md,
# "Memory over a 1,000,000-record pull"): starts fieldsyncd on an existing database, enrolls a
# new device of the partner holding the most records (the CLI: devices create, enroll-code,
# device enroll), runs 'fieldsync sync' to the end, and samples the server's VmRSS every second
# from /proc; VmHWM is reset after start-up (/proc/PID/clear_refs). Prints the samples against
# the documents pulled so far, so a growth with the pull shows as a slope.
#
#   bench/report_db --db /work/tmp-1m/fieldsync.db --records 1000000     # once, minutes
#   bench/pull_memory.sh BUILD_DIR /work/tmp-1m/fieldsync.db /dev/shm/pull-out
#
# The device's database goes into the output directory (tmpfs is best: the device fsyncs every
# page, and the point is the server). The database is opened as is: use a copy.
set -euo pipefail
build=${1:?build dir}
db=${2:?database}
out=${3:?output dir}
port=${PORT:-50978}
mkdir -p "$out"
rm -f "$out/device.db" "$out/device.db-wal" "$out/device.db-shm"
fieldsyncd="$build/server/fieldsyncd"
cli="$build/cli/fieldsync"
token=$("$fieldsyncd" --db "$db" --create-admin-token 2>/dev/null | tail -1)
"$fieldsyncd" --db "$db" --listen "127.0.0.1:$port" >"$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 1200); do
  grep -q listening "$out/server.log" 2>/dev/null && break
  kill -0 $server 2>/dev/null || { echo "fieldsyncd exited: $(tail -3 "$out/server.log")"; exit 1; }
  sleep 0.5
done
kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$server/status"; }
export FIELDSYNC_SERVER=127.0.0.1:$port FIELDSYNC_TOKEN=$token
partner=$(sqlite3 "$db" "SELECT partner_id FROM records GROUP BY 1 ORDER BY COUNT(*) DESC LIMIT 1")
docs=$(sqlite3 "$db" "SELECT COUNT(*) FROM docs WHERE partner_id = '$partner'" 2>/dev/null ||
       echo "?")
device=$("$cli" --json devices create --partner "$partner" --name "pull probe" |
         sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -1)
code=$("$cli" --json devices enroll-code "$device" | sed -n 's/.*"code":"\([^"]*\)".*/\1/p')
"$cli" device enroll --code "$code" --device-db "$out/device.db" >/dev/null
echo "database: $(du -h "$db" | cut -f1) ($db); partner $partner, $docs documents in scope"
echo "idle after start: VmRSS $(kb VmRSS) kB, VmHWM $(kb VmHWM) kB"
echo 5 >"/proc/$server/clear_refs"
start=$(date +%s)
"$cli" sync --device-db "$out/device.db" --timeout 600 >"$out/sync.log" 2>&1 &
sync=$!
while kill -0 $sync 2>/dev/null; do
  pulled=$(grep -o '[0-9,]* documents' "$out/sync.log" 2>/dev/null | tail -1 || true)
  echo "t=$(($(date +%s) - start))s VmRSS $(kb VmRSS) kB VmHWM $(kb VmHWM) kB ${pulled:-}"
  sleep 1
done
wait $sync || { echo "sync failed: $(tail -3 "$out/sync.log")"; exit 1; }
echo "done in $(($(date +%s) - start)) s: $(tail -1 "$out/sync.log")"
echo "end: VmRSS $(kb VmRSS) kB, VmHWM $(kb VmHWM) kB"
