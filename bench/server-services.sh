#!/usr/bin/env bash
# The dashboard's services list on a swarm with 200 services (issue 5): latency of GET
# /services (HTML) and GET /api/services (JSON), sequential and with concurrent clients,
# against `docker service ls` on the same swarm, and the server's memory.
#
# Runs on the local engine's swarm (DOCKER_HOST or /var/run/docker.sock; it must be a swarm
# manager; a one-node swarm is fine). It builds a FROM-scratch image with Debian's
# /bin/busybox, creates COUNT services `skbench-NNN` (replicated, 1 replica, `/bin/busybox
# sleep 1000000`, label skbench=server-services; the first 100 in 5 stacks bench1..bench5
# through the label com.docker.stack.namespace) through the Engine API (the spec `docker
# service create --detach` sends) and waits until all their tasks run. Then it starts
# `swarmkeeper server` on a free 127.0.0.1 port with a temporary state dir, logs in as admin,
# makes an API token, and times with bench/lib/server_services.py (one keep-alive connection
# per client, wall time per request at the client):
#   - GET /services with the session cookie and GET /api/services with the bearer token:
#     WARMUP + REQUESTS sequential, then CLIENTS concurrent clients x (5 + CONC_REQUESTS);
#   - the engine's own GET /services and GET /tasks (the two calls the server makes for
#     these pages), both at once, and GET /services?status=true (what `docker service ls`
#     asks) over the socket, WARMUP + ENGINE_REQUESTS sequential: where the time goes;
#   - the server's and dockerd's CPU time over each run, and dockerd's when idle;
# then `docker service ls` with hyperfine (LS_RUNS runs, 3 warm-up), and the server's VmRSS
# and VmHWM after all that. The services, the image and the server go away at the end, also
# on failure or Ctrl-C (leftover services of an interrupted run are removed first).
#
# Usage: bench/server-services.sh     (as root, after scripts/ensure-engine.sh)
# Env:   COUNT (200), REQUESTS (300), WARMUP (20), CLIENTS (4), CONC_REQUESTS (100 per
#        client), ENGINE_REQUESTS (100), LS_RUNS (30),
#        IMAGE_BY_ID (0; 1: the services name the image by its ID, sha256:..., which Swarm
#        never tries to pull; by tag, every task first asks the registry, and on a machine
#        without internet each task waits for that lookup to fail, about 65 s for 200),
#        SWARMKEEPER (default: target/release/swarmkeeper, built with `cargo build --release
#        -p swarmkeeper-cli` when missing), BENCH_KEEP (1: keep the temp folder with the raw
#        JSON and the server log)
# Needs: docker CLI, a swarm manager engine, python3, hyperfine, curl, /bin/busybox
#        (busybox-static). Takes: about 2 minutes with the defaults.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

COUNT=${COUNT:-200}
REQUESTS=${REQUESTS:-300}
WARMUP=${WARMUP:-20}
CLIENTS=${CLIENTS:-4}
CONC_REQUESTS=${CONC_REQUESTS:-100}
ENGINE_REQUESTS=${ENGINE_REQUESTS:-100}
LS_RUNS=${LS_RUNS:-30}
IMAGE_BY_ID=${IMAGE_BY_ID:-0}
IMAGE=skbench-busybox:latest
PY=$BENCH_LIB/server_services.py

need_root
need_cmd docker "run scripts/ensure-engine.sh"
need_cmd python3 "apt-get install -y python3"
need_cmd hyperfine "apt-get install -y hyperfine"
[[ -x /bin/busybox ]] || die "/bin/busybox is missing: apt-get install -y busybox-static"
[[ $(docker info --format '{{.Swarm.ControlAvailable}}') == true ]] ||
    die "the engine is not a swarm manager (docker swarm init)"

if [[ -n ${SWARMKEEPER:-} ]]; then
    SK=$SWARMKEEPER
    [[ -x $SK ]] || die "SWARMKEEPER=$SK is not an executable"
else
    SK=$REPO/target/release/swarmkeeper
    if [[ ! -x $SK ]]; then
        say "building swarmkeeper (release); this takes minutes"
        (cd "$REPO" && cargo build --release -q -p swarmkeeper-cli) >&2 || die "cargo build failed"
    fi
fi

ENGINE_PID=
if [[ -z ${DOCKER_HOST:-} || $DOCKER_HOST == unix:///var/run/docker.sock ]]; then
    ENGINE_PID=$(cat /var/run/docker.pid 2>/dev/null || pidof -s dockerd || true)
fi
[[ $ENGINE_PID =~ ^[0-9]+$ ]] || die "cannot find dockerd's pid (only the default engine is supported)"

SERVER_PID=
remove_services() {
    local ids t0
    ids=$(docker service ls -q --filter label=skbench=server-services 2>/dev/null || true)
    [[ -n $ids ]] || return 0
    t0=$(date +%s)
    say "removing $(wc -w <<<"$ids") skbench services"
    # shellcheck disable=SC2086
    docker service rm $ids >/dev/null 2>&1 || say "docker service rm failed"
    for _ in $(seq 180); do
        [[ -z $(docker ps -aq --filter label=skbench=server-services 2>/dev/null) ]] && break
        sleep 1
    done
    local left
    left=$(docker ps -aq --filter label=skbench=server-services 2>/dev/null | wc -l)
    say "services removed; containers gone after $(($(date +%s) - t0)) s ($left left)"
}

finish() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    remove_services
    docker rmi "$IMAGE" >/dev/null 2>&1 || true
    (exit "$rc")
    cleanup
}
trap finish EXIT
trap 'exit 130' INT TERM
bench_tmp
T=$BENCH_TMP

remove_services # leftovers of an interrupted run

say "building $IMAGE (FROM scratch + /bin/busybox)"
mkdir "$T/ctx"
cp /bin/busybox "$T/ctx/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\n' >"$T/ctx/Dockerfile"
image_id=$(DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" "$T/ctx" 2>/dev/null) || die "docker build failed"
SERVICE_IMAGE=$IMAGE
[[ $IMAGE_BY_ID == 1 ]] && SERVICE_IMAGE=$image_id

say "creating $COUNT services"
t0=$(date +%s.%N)
python3 "$PY" create --count "$COUNT" --image "$SERVICE_IMAGE" --stacks 5 --per-stack 20
created=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$(date +%s.%N)")
say "created in $created s; waiting for $COUNT running tasks"
running_after=$(python3 "$PY" wait --count "$COUNT" --timeout 600)
say "all $COUNT tasks running ${running_after} s after creation"
sleep 5 # let the engine settle after the container starts
all_services=$(docker service ls -q | wc -l)
all_tasks=$(curl -s --unix-socket /var/run/docker.sock http://x/v1.41/tasks | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
say "starting the server on $BASE"
env -u SWARMKEEPER_ADMIN_PASSWORD_FILE -u SWARMKEEPER_REPORT_SECRET_FILE \
    SWARMKEEPER_ADMIN_PASSWORD="$PASSWORD" \
    "$SK" server --listen "127.0.0.1:$PORT" --state-dir "$T/state" \
    --admin-password-file "$T/no-such-file" >"$T/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
    curl -fs "$BASE/healthz" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$T/server.log" >&2; die "the server exited"; }
    sleep 0.1
done
curl -fs "$BASE/healthz" >/dev/null || die "the server does not answer /healthz"

creds=$(python3 "$PY" token --base "$BASE" --password "$PASSWORD")
TOKEN=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["token"])' "$creds")
COOKIE=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["cookie"])' "$creds")
listed=$(curl -fs -H "Authorization: Bearer $TOKEN" "$BASE/api/services" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["services"]))')
in_html=$(curl -fs -H "Cookie: $COOKIE" "$BASE/services" | grep -oE 'skbench-[0-9]{3}\b' | sort -u | wc -l)
say "the server lists $listed services; the HTML page names $in_html skbench services"

say "measuring"
python3 "$PY" measure --base "$BASE" --token "$TOKEN" --cookie "$COOKIE" --pid "$SERVER_PID" \
    --engine-pid "$ENGINE_PID" --requests "$REQUESTS" --warmup "$WARMUP" --clients "$CLIENTS" \
    --concurrent-requests "$CONC_REQUESTS" --engine-requests "$ENGINE_REQUESTS" >"$T/results.json"

python3 - "$SERVER_PID" >"$T/memory.json" <<'EOF'
import json, sys
status = {}
with open(f"/proc/{sys.argv[1]}/status") as f:
    for line in f:
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
            status[k] = int(v.split()[0])
print(json.dumps(status))
EOF

say "docker service ls: $LS_RUNS runs"
hyperfine --shell=none --warmup 3 --runs "$LS_RUNS" --export-json "$T/service-ls.json" \
    'docker service ls' >/dev/null 2>&1 || die "hyperfine failed"

echo
echo "== server-services =="
echo "machine: $(machine_line), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "engine:  $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})'), $all_services services ($COUNT skbench), $all_tasks tasks in /tasks"
echo "swarm:   $COUNT services of $SERVICE_IMAGE created in $created s, all tasks running ${running_after} s later"
echo "binary:  $SK ($("$SK" --version)); bench scripts from $(source_line)"
echo "server:  $SK server --listen 127.0.0.1:PORT --state-dir TMP; /api/services listed $listed services, the /services page $in_html of the $COUNT skbench ones"
echo
python3 "$PY" report "$T/results.json" "$T/service-ls.json" "$T/memory.json"
if grep -qiE 'error|warn' "$T/server.log"; then
    echo
    echo "server log warnings/errors:"
    grep -iE 'error|warn' "$T/server.log" | head -n 5
fi
