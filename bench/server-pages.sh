#!/usr/bin/env bash
# Every dashboard page and its JSON twin on the swarm issue 14 names: 200 services, 50
# simulated nodes, 500 secrets and 500 configs (budget: p99 <= 100 ms each; Portainer's
# configs page was reported at over 30 s with 180 configs), next to the docker CLI's
# listings of the same objects (hyperfine) on the same swarm, in the same run.
#
# Runs on the local engine's swarm (DOCKER_HOST or /var/run/docker.sock, a swarm manager).
# Builds a FROM-scratch busybox image and creates
#   - RUNNING services `skbench-NNN` (1 replica each, `sleep`; the first 100 in 5 stacks
#     bench1..bench5 by their namespace label; bench/lib/server_services.py) and waits until
#     their tasks run;
#   - OBJECTS configs and OBJECTS secrets `skbench-obj-NNN` and USERS services of 0
#     replicas that use 10 of each (bench/lib/server_objects.py): RUNNING + USERS services;
#   - then starts `swarmkeeper server` on a free 127.0.0.1 port with a temporary state dir
#     and a report secret, and posts one agent report for each of NODES simulated nodes, as
#     `swarmkeeper agent` does (bench/lib/server_pages.py nodes);
# and times every page and twin (bench/lib/server_pages.py measure). With SWARMKEEPER_BASE
# (another binary, e.g. built from the commit before a change) a second server runs beside
# the first on the same swarm, with the same reports, and the pages issue 14 named as slow
# are timed on both, one request to each in turn (server_pages.py compare): a before/after
# under the same load. Everything it made goes away at the end, also on failure or Ctrl-C.
#
# Usage: bench/server-pages.sh      (as root, after scripts/ensure-engine.sh)
# Env:   RUNNING (150), USERS (50), OBJECTS (500), NODES (50), REQUESTS (200), WARMUP (10),
#        LS_RUNS (20), SWARMKEEPER (default: target/release/swarmkeeper), SWARMKEEPER_BASE
# Needs: docker CLI, python3, hyperfine, curl, /bin/busybox. Takes: about 5 minutes.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

RUNNING=${RUNNING:-150}
USERS=${USERS:-50}
OBJECTS=${OBJECTS:-500}
NODES=${NODES:-50}
REQUESTS=${REQUESTS:-200}
WARMUP=${WARMUP:-10}
LS_RUNS=${LS_RUNS:-20}
IMAGE=skbench-busybox:latest
SS=$BENCH_LIB/server_services.py
SO=$BENCH_LIB/server_objects.py
SP=$BENCH_LIB/server_pages.py

need_root
need_cmd docker "run scripts/ensure-engine.sh"
need_cmd python3 "apt-get install -y python3"
need_cmd hyperfine "apt-get install -y hyperfine"
[[ -x /bin/busybox ]] || die "/bin/busybox is missing: apt-get install -y busybox-static"
SK=${SWARMKEEPER:-$REPO/target/release/swarmkeeper}
[[ -x $SK ]] || die "$SK is missing: cargo build --release -p swarmkeeper-cli"

SERVER_PID=
BASE_PID=
remove_all() {
    local ids
    ids=$(docker service ls -q --filter label=skbench=server-services 2>/dev/null || true)
    # shellcheck disable=SC2086
    [[ -z $ids ]] || docker service rm $ids >/dev/null 2>&1 || say "docker service rm failed"
    python3 "$SO" remove || say "removing the object bench's services, secrets and configs failed"
    for _ in $(seq 120); do
        [[ -z $(docker ps -aq --filter label=skbench=server-services 2>/dev/null) ]] && break
        sleep 1
    done
}
finish() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $SERVER_PID ]]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; fi
    if [[ -n $BASE_PID ]]; then kill -TERM "$BASE_PID" 2>/dev/null || true; fi
    remove_all
    docker rmi "$IMAGE" >/dev/null 2>&1 || true
    (exit "$rc")
    cleanup
}
trap finish EXIT
trap 'exit 130' INT TERM
bench_tmp
T=$BENCH_TMP

remove_all # leftovers of an interrupted run
mkdir "$T/ctx"
cp /bin/busybox "$T/ctx/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\n' >"$T/ctx/Dockerfile"
image_id=$(DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" "$T/ctx" 2>/dev/null) || die "docker build failed"

say "creating $RUNNING running services, $OBJECTS configs + $OBJECTS secrets and $USERS services using them"
python3 "$SS" create --count "$RUNNING" --image "$image_id" --stacks 5 --per-stack 20
python3 "$SO" create --count "$OBJECTS" --services "$USERS" --image "$image_id"
running_after=$(python3 "$SS" wait --count "$RUNNING" --timeout 600)
say "all $RUNNING tasks running after ${running_after} s"

# start_server BINARY NAME: a server with its own port and state dir, an admin session and
# token, and the simulated nodes' reports; sets BASE, TOKEN, COOKIE and the PID in $NAME_PID.
start_server() {
    local binary=$1 name=$2 port password creds pid
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    BASE=http://127.0.0.1:$port
    password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    env -u SWARMKEEPER_ADMIN_PASSWORD_FILE -u SWARMKEEPER_REPORT_SECRET_FILE \
        SWARMKEEPER_ADMIN_PASSWORD="$password" \
        "$binary" server --listen "127.0.0.1:$port" --state-dir "$T/state-$name" \
        --admin-password-file "$T/no-such-file" --report-secret-file "$T/report-secret" \
        >"$T/server-$name.log" 2>&1 &
    pid=$!
    printf -v "${name}_PID" '%s' "$pid"
    for _ in $(seq 100); do
        curl -fs "$BASE/healthz" >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || { cat "$T/server-$name.log" >&2; die "the server exited"; }
        sleep 0.1
    done
    creds=$(python3 "$SS" token --base "$BASE" --password "$password")
    TOKEN=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["token"])' "$creds")
    COOKIE=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["cookie"])' "$creds")
    python3 "$SP" nodes --base "$BASE" --secret "$(cat "$T/report-secret")" --count "$NODES"
}

head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$T/report-secret"
if [[ -n ${SWARMKEEPER_BASE:-} ]]; then
    [[ -x $SWARMKEEPER_BASE ]] || die "$SWARMKEEPER_BASE is not an executable"
    start_server "$SWARMKEEPER_BASE" BASE
    OTHER=$BASE OTHER_TOKEN=$TOKEN OTHER_COOKIE=$COOKIE
fi
start_server "$SK" SERVER

echo
echo "== server-pages =="
echo "machine: $(machine_line), load average $(cut -d' ' -f1-3 /proc/loadavg) before"
echo "engine:  $(docker version --format '{{.Server.Version}}'), $(docker service ls -q | wc -l) services, $(docker config ls -q | wc -l) configs, $(docker secret ls -q | wc -l) secrets; $NODES simulated nodes reporting"
echo "binary:  $SK ($("$SK" --version)); bench scripts from $(source_line)"
python3 "$SP" measure --base "$BASE" --token "$TOKEN" --cookie "$COOKIE" \
    --requests "$REQUESTS" --warmup "$WARMUP"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -n ${SWARMKEEPER_BASE:-} ]]; then
    echo
    echo "before/after: A $SWARMKEEPER_BASE ($("$SWARMKEEPER_BASE" --version)), B $SK;" \
        "load average $(cut -d' ' -f1-3 /proc/loadavg) before"
    python3 "$SP" compare --base "$BASE" --token "$TOKEN" --cookie "$COOKIE" \
        --other "$OTHER" --other-token "$OTHER_TOKEN" --other-cookie "$OTHER_COOKIE" \
        --requests "$REQUESTS" --warmup "$WARMUP"
    echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
fi
echo
echo "the docker CLI on the same swarm (hyperfine, $LS_RUNS runs):"
hyperfine --shell=none --warmup 2 --runs "$LS_RUNS" 'docker service ls' 'docker config ls' \
    'docker secret ls' 'docker node ls' 'docker stack ls' 2>/dev/null |
    grep -E 'Benchmark|Time \(mean'
