#!/usr/bin/env bash
# The secrets and configs pages at 500 of each (issue 14: p99 <= 100 ms; Portainer's configs
# page took over 30 s at 180): GET /configs, /api/configs, /secrets, /api/secrets, timed
# sequentially on one keep-alive connection, next to `docker config ls` and `docker secret ls`
# (hyperfine) on the same swarm.
#
# Runs on the local engine's swarm (DOCKER_HOST or /var/run/docker.sock, a swarm manager).
# Creates COUNT configs and COUNT secrets `skbench-obj-NNN` and SERVICES services of 0
# replicas that use 10 of each (bench/lib/server_objects.py), starts `swarmkeeper server` on
# a free 127.0.0.1 port with a temporary state dir, logs in as admin, makes an API token and
# measures. Everything it made goes away at the end, also on failure or Ctrl-C.
#
# Usage: bench/server-objects.sh      (as root, after scripts/ensure-engine.sh)
# Env:   COUNT (500), SERVICES (50), REQUESTS (300), WARMUP (20),
#        SWARMKEEPER (default: target/release/swarmkeeper)
# Needs: docker CLI, python3, hyperfine, curl. Takes: about a minute.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

COUNT=${COUNT:-500}
SERVICES=${SERVICES:-50}
REQUESTS=${REQUESTS:-300}
WARMUP=${WARMUP:-20}
PY=$BENCH_LIB/server_objects.py
SS=$BENCH_LIB/server_services.py

need_cmd docker "run scripts/ensure-engine.sh"
need_cmd python3 "apt-get install -y python3"
need_cmd hyperfine "apt-get install -y hyperfine"
SK=${SWARMKEEPER:-$REPO/target/release/swarmkeeper}
[[ -x $SK ]] || die "$SK is missing: cargo build --release -p swarmkeeper-cli"

SERVER_PID=
finish() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $SERVER_PID ]]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; fi
    python3 "$PY" remove || say "removing the bench objects failed"
    (exit "$rc")
    cleanup
}
trap finish EXIT
trap 'exit 130' INT TERM
bench_tmp
T=$BENCH_TMP

python3 "$PY" remove # leftovers of an interrupted run
say "creating $COUNT configs, $COUNT secrets and $SERVICES services"
python3 "$PY" create --count "$COUNT" --services "$SERVICES" --image busybox:latest

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
env -u SWARMKEEPER_ADMIN_PASSWORD_FILE -u SWARMKEEPER_REPORT_SECRET_FILE \
    SWARMKEEPER_ADMIN_PASSWORD="$PASSWORD" \
    "$SK" server --listen "127.0.0.1:$PORT" --state-dir "$T/state" \
    --admin-password-file "$T/no-such-file" >"$T/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
    curl -fs "$BASE/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
creds=$(python3 "$SS" token --base "$BASE" --password "$PASSWORD")
TOKEN=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["token"])' "$creds")
COOKIE=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["cookie"])' "$creds")

echo
echo "== server-objects =="
echo "machine: $(machine_line), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "engine:  $(docker version --format '{{.Server.Version}}'), $(docker config ls -q | wc -l) configs, $(docker secret ls -q | wc -l) secrets, $(docker service ls -q | wc -l) services"
echo "binary:  $SK ($("$SK" --version))"
python3 "$PY" measure --base "$BASE" --token "$TOKEN" --cookie "$COOKIE" \
    --requests "$REQUESTS" --warmup "$WARMUP"
hyperfine --shell=none --warmup 3 --runs 30 'docker config ls' 'docker secret ls' 2>/dev/null |
    grep -E 'Benchmark|Time \(mean'
