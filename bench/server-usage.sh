#!/usr/bin/env bash
# The server's side of resource usage (issue 15): NODES simulated agents, each reporting a
# usage sample of TASKS task containers every 10 s (the agent's default --stats-interval),
# posted to a real `swarmkeeper server` over HTTP. Prints, per server binary and run: the
# server's CPU over an ingest-only window (percent of one core; no page is requested during
# it), its VmRSS and VmHWM, report latency, then p50/p99 of the 30-day service and node usage
# pages (HTML) and a service's JSON twin, timed while the agents keep posting, and the rows and
# bytes the database grew by with the database size per day the thinning gives.
#
# The charted node and service get 30 days of thinned history first (written into the
# server's SQLite file: 1 h at 10 s, 23 h at 1 min, 29 days at 1 h), so the 30-day page reads
# a full month; the simulated agents add the live samples on top.
#
# Side by side: SWARMKEEPER may list several binaries as LABEL=PATH separated by spaces
# (`SWARMKEEPER="before=/tmp/sk-main after=target/static/.../swarmkeeper"`); each run goes
# through them in turn, RUNS times, so every binary meets the same machine load.
#
# Usage: bench/server-usage.sh      Env: NODES (100), TASKS (100), WINDOW (60: seconds of
#        ingest-only CPU measurement, after 10 s of warm-up), CHART_REQUESTS (200), RUNS (1),
#        SWARMKEEPER (default target/release/swarmkeeper), BENCH_KEEP (1: keep the temp folder)
# Needs: python3, curl; the engine is not needed for the usage pages (the server starts without
# one). Takes per binary and run: WINDOW + about 60 s.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

NODES=${NODES:-100}
TASKS=${TASKS:-100}
WINDOW=${WINDOW:-60}
CHART_REQUESTS=${CHART_REQUESTS:-200}
RUNS=${RUNS:-1}
PY=$BENCH_LIB/server_usage.py
need_cmd python3 "apt-get install -y python3"
need_cmd curl "apt-get install -y curl"

BINARIES=${SWARMKEEPER:-current=$REPO/target/release/swarmkeeper}
for entry in $BINARIES; do
    [[ $entry == *=* ]] || entry=current=$entry
    [[ -x ${entry#*=} ]] || die "${entry#*=} is missing: cargo build --release -p swarmkeeper-cli (or set SWARMKEEPER)"
done

T=$(mktemp -d /tmp/skbench-usage.XXXXXX)
SERVER_PID=
stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
        SERVER_PID=
    fi
    return 0
}
finish() {
    stop_server
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then say "kept $T"; else rm -rf "$T"; fi
}
trap finish EXIT

# run_one LABEL BINARY: one server on a fresh state directory, ingest, pages, database growth.
run_one() {
    local label=$1 sk=$2 dir=$T/$1-$RANDOM
    mkdir -p "$dir"
    local port base password secret
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    base=http://127.0.0.1:$port
    password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    secret=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    printf '%s' "$secret" >"$dir/secret"
    env -u SWARMKEEPER_ADMIN_PASSWORD_FILE SWARMKEEPER_ADMIN_PASSWORD="$password" \
        "$sk" server --listen "127.0.0.1:$port" --state-dir "$dir/state" \
        --admin-password-file "$dir/no-such-file" --report-secret-file "$dir/secret" >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        curl -fs "$base/healthz" >/dev/null 2>&1 && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir/server.log" >&2; die "the server exited"; }
        sleep 0.1
    done
    local token db node
    token=$(python3 "$BENCH_LIB/server_services.py" token --base "$base" --password "$password" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    db=$dir/state/swarmkeeper.db
    [[ -f $db ]] || die "no database in $dir/state"
    node=$(python3 -c 'print(("simnode%03d" % 0).ljust(25, "a"))')
    python3 "$PY" prefill "$db" "$node" sim_chart 10 30 >"$dir/prefill.json"
    local size_before rows_before
    size_before=$(stat -c %s "$db")
    rows_before=$(rows "$db")
    say "$label: $NODES agents x $TASKS tasks every 10 s; CPU over $WINDOW s of ingest alone, then the 30-day pages"
    local load
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    # Posting runs on through the page timings (about 40 s at most), then stops.
    python3 "$PY" ingest "$base" "$secret" "$NODES" "$TASKS" $((10 + WINDOW + 60)) "$SERVER_PID" 10 $((10 + WINDOW)) >"$dir/ingest.json" &
    local ingest=$!
    sleep $((10 + WINDOW + 1))
    python3 "$PY" chart "$base" "$token" "/services/sim_chart/usage?range=30d" "$CHART_REQUESTS" >"$dir/chart1.json"
    python3 "$PY" chart "$base" "$token" "/api/services/sim_chart/usage?range=30d" "$CHART_REQUESTS" >"$dir/chart2.json"
    python3 "$PY" chart "$base" "$token" "/nodes/$node/usage?range=30d" "$CHART_REQUESTS" >"$dir/chart3.json"
    wait "$ingest"
    stop_server
    python3 -c 'import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA wal_checkpoint(TRUNCATE)")' "$db" || true
    local size_after rows_after
    size_after=$(stat -c %s "$db")
    rows_after=$(rows "$db")
    echo "== server-usage: $label =="
    echo "server: $sk ($(stat -c %y "$sk" | cut -d. -f1)); load average at the start: $load, at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "ingest: $(cat "$dir/ingest.json")"
    for f in chart1 chart2 chart3; do echo "page:   $(cat "$dir/$f.json")"; done
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
    grep -iE 'error|warn' "$dir/server.log" | head -n 5 || true
    rm -rf "$dir"
}

rows() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute("select (select count(*) from node_usage), (select count(*) from task_usage)").fetchone())' "$1"; }

echo "machine: $(nproc) cores"
for run in $(seq "$RUNS"); do
    for entry in $BINARIES; do
        [[ $entry == *=* ]] || entry=current=$entry
        say "run $run: ${entry%%=*}"
        run_one "${entry%%=*}" "${entry#*=}"
    done
done
