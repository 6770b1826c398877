#!/usr/bin/env bash
# The server's side of resource usage (issue 15): NODES simulated agents, each reporting a
# usage sample of TASKS task containers every 10 s (the agent's default --stats-interval),
# posted to a real `swarmkeeper server` over HTTP; while they post, 30-day chart pages are
# timed. Prints: the server's CPU over the ingest (percent of one core), its VmRSS and VmHWM,
# report latency, the rows and bytes the database grew by, the database size per day the
# thinning gives (computed from the measured bytes per sample), and p50/p99 of the 30-day
# service and node usage pages (HTML) and a service's JSON twin.
#
# The charted node and service get 30 days of thinned history first (written into the
# server's SQLite file: 1 h at 10 s, 23 h at 1 min, 29 days at 1 h), so the 30-day page reads
# a full month; the simulated agents add the live samples on top.
#
# Usage: bench/server-usage.sh      Env: NODES (100), TASKS (100), SECONDS_RUN (120),
#        CHART_REQUESTS (200), SWARMKEEPER (default target/release/swarmkeeper),
#        BENCH_KEEP (1: keep the temp folder)
# Needs: python3, curl; the engine is not needed for the usage pages (the server starts without
# one). Takes: SECONDS_RUN + about 30 s.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

NODES=${NODES:-100}
TASKS=${TASKS:-100}
SECONDS_RUN=${SECONDS_RUN:-120}
CHART_REQUESTS=${CHART_REQUESTS:-200}
PY=$BENCH_LIB/server_usage.py
need_cmd python3 "apt-get install -y python3"
need_cmd curl "apt-get install -y curl"

SK=${SWARMKEEPER:-$REPO/target/release/swarmkeeper}
[[ -x $SK ]] || die "$SK is missing: cargo build --release -p swarmkeeper-cli (or set SWARMKEEPER)"

T=$(mktemp -d /tmp/skbench-usage.XXXXXX)
SERVER_PID=
finish() {
    [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then say "kept $T"; else rm -rf "$T"; fi
}
trap finish EXIT

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
SECRET=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
printf '%s' "$SECRET" >"$T/secret"
say "starting the server on $BASE"
env -u SWARMKEEPER_ADMIN_PASSWORD_FILE SWARMKEEPER_ADMIN_PASSWORD="$PASSWORD" \
    "$SK" server --listen "127.0.0.1:$PORT" --state-dir "$T/state" \
    --admin-password-file "$T/no-such-file" --report-secret-file "$T/secret" >"$T/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
    curl -fs "$BASE/healthz" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$T/server.log" >&2; die "the server exited"; }
    sleep 0.1
done
TOKEN=$(python3 "$BENCH_LIB/server_services.py" token --base "$BASE" --password "$PASSWORD" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
DB=$T/state/swarmkeeper.db
[[ -f $DB ]] || die "no database in $T/state"

NODE=$(python3 -c 'print(("simnode%03d" % 0).ljust(25, "a"))')
say "30 days of history for $NODE and the service sim_chart (10 replicas)"
python3 "$PY" prefill "$DB" "$NODE" sim_chart 10 30 >"$T/prefill.json"
size_before=$(stat -c %s "$DB")
rows() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute("select (select count(*) from node_usage), (select count(*) from task_usage)").fetchone())' "$DB"; }
rows_before=$(rows)

say "$NODES agents x $TASKS tasks every 10 s for $SECONDS_RUN s; timing the 30-day pages meanwhile"
python3 "$PY" ingest "$BASE" "$SECRET" "$NODES" "$TASKS" "$SECONDS_RUN" "$SERVER_PID" >"$T/ingest.json" &
INGEST=$!
sleep 15
python3 "$PY" chart "$BASE" "$TOKEN" "/services/sim_chart/usage?range=30d" "$CHART_REQUESTS" >"$T/chart1.json"
python3 "$PY" chart "$BASE" "$TOKEN" "/api/services/sim_chart/usage?range=30d" "$CHART_REQUESTS" >"$T/chart2.json"
python3 "$PY" chart "$BASE" "$TOKEN" "/nodes/$NODE/usage?range=30d" "$CHART_REQUESTS" >"$T/chart3.json"
wait "$INGEST"
sleep 1
python3 -c 'import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA wal_checkpoint(TRUNCATE)")' "$DB" || true
size_after=$(stat -c %s "$DB")
rows_after=$(rows)

echo "== server-usage =="
echo "machine: $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server: $SK ($(stat -c %y "$SK" | cut -d. -f1))"
echo "ingest: $(cat "$T/ingest.json")"
for f in chart1 chart2 chart3; do echo "page:   $(cat "$T/$f.json")"; done
python3 - "$size_before" "$size_after" "$rows_before" "$rows_after" "$NODES" "$TASKS" <<'PY'
import sys, ast
b, a = int(sys.argv[1]), int(sys.argv[2])
rb, ra = ast.literal_eval(sys.argv[3]), ast.literal_eval(sys.argv[4])
nodes, tasks = int(sys.argv[5]), int(sys.argv[6])
added = (ra[0] - rb[0]) + (ra[1] - rb[1])
per_row = (a - b) / added if added else float("nan")
# Samples one series keeps, per the thinning: 360 (1 h at 10 s) + 1380 (23 h at 1 min) + 24/day.
day1 = 360 + 1380
series = nodes * (1 + tasks)
print(f"database: grew {(a - b) / 2**20:.1f} MiB for {added} rows: {per_row:.0f} bytes a row (with its index entries)")
print(f"per day: the first day {series * day1 * per_row / 2**20:.0f} MiB (1 h at 10 s + 23 h at 1 min, {series} series), "
      f"then {series * 24 * per_row / 2**20:.1f} MiB a day (one sample an hour) up to 30 days: "
      f"{series * (day1 + 29 * 24) * per_row / 2**30:.2f} GiB at most; flat after that")
PY
grep -iE 'error|warn' "$T/server.log" | head -n 5 || true
