#!/usr/bin/env bash
# Auto-deploy polling at scale (issue 12): COUNT services labelled swarmkeeper.autodeploy=true
# (interval 1m) follow one tag of a password-protected registry; the server should send one
# manifest HEAD per service per interval, spread over it, use little CPU and memory, and write
# no spec while the tag does not move.
#
# Runs on the local engine's swarm (a one-node swarm is fine). It starts Debian's
# docker-registry on 127.0.0.1 with htpasswd, pushes a FROM-scratch busybox image as
# skbench/app:stable, creates COUNT services of 0 replicas (no containers: what is measured is
# the polling) pinned to that digest through the Engine API, and starts `swarmkeeper server`
# with the registry's credentials in a docker config.json (--docker-config). After WARMUP
# seconds (the first listing; every service's first check falls in its slot of the first
# interval) it measures over WINDOW seconds: the HEAD requests the registry logged, the
# server's CPU time (utime+stime of all its threads) and its VmRSS/VmHWM, and the services'
# summed versions before and after (a spec write raises a version). Everything it made goes
# away at the end, also on failure or Ctrl-C.
#
# Usage: bench/autodeploy-poll.sh      (as root, after scripts/ensure-engine.sh)
# Env:   COUNT (1000), WARMUP (75), WINDOW (120), SWARMKEEPER (default target/bench/release/
#        swarmkeeper, built when missing), BENCH_KEEP (1: keep the temp folder and logs)
# Needs: docker CLI, a swarm manager, docker-registry, htpasswd (apache2-utils), python3,
#        /bin/busybox (busybox-static). Takes: about WARMUP + WINDOW + 1 minute.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

COUNT=${COUNT:-1000}
WARMUP=${WARMUP:-75}
WINDOW=${WINDOW:-120}
PY=$BENCH_LIB/autodeploy_poll.py

need_root
need_cmd docker "run scripts/ensure-engine.sh"
need_cmd docker-registry "apt-get install -y docker-registry"
need_cmd htpasswd "apt-get install -y apache2-utils"
need_cmd python3 "apt-get install -y python3"
[[ -x /bin/busybox ]] || die "/bin/busybox is missing: apt-get install -y busybox-static"
[[ $(docker info --format '{{.Swarm.ControlAvailable}}') == true ]] ||
    die "the engine is not a swarm manager (docker swarm init)"

SK=$(swarmkeeper_bin)

SERVER_PID=
REGISTRY_PID=
REF=
finish() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in $SERVER_PID $REGISTRY_PID; do
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    python3 "$PY" remove || say "removing the services failed"
    [[ -z $REF ]] || docker rmi "$REF" >/dev/null 2>&1 || true
    (exit "$rc")
    cleanup
}
trap finish EXIT
trap 'exit 130' INT TERM
bench_tmp
T=$BENCH_TMP
python3 "$PY" remove # leftovers of an interrupted run

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
REG_PORT=$(free_port)
REG=127.0.0.1:$REG_PORT
USER=bench
PASS=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
htpasswd -Bbn "$USER" "$PASS" >"$T/htpasswd"
cat >"$T/registry.yml" <<YAML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $T/registry-data
http:
  addr: $REG
auth:
  htpasswd:
    realm: skbench
    path: $T/htpasswd
YAML
say "starting docker-registry on $REG (htpasswd)"
docker-registry serve "$T/registry.yml" >"$T/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 50); do
    curl -s -o /dev/null "http://$REG/v2/" && break
    sleep 0.1
done

mkdir -p "$T/docker" "$T/ctx"
export DOCKER_CONFIG=$T/docker
printf '%s' "$PASS" | docker login "$REG" -u "$USER" --password-stdin >/dev/null
cp /bin/busybox "$T/ctx/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\n' >"$T/ctx/Dockerfile"
REF=$REG/skbench/app:stable
DOCKER_BUILDKIT=0 docker build -q -t "$REF" "$T/ctx" >/dev/null
digest=$(docker push "$REF" | grep -o 'sha256:[0-9a-f]\{64\}' | head -n 1)
[[ -n $digest ]] || die "docker push printed no digest"
# The server reads credentials from a config.json of its own, as from a Swarm secret.
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$REG" "$(printf '%s:%s' "$USER" "$PASS" | base64 -w0)" >"$T/server-config.json"
unset DOCKER_CONFIG

say "creating $COUNT services following $REF"
t0=$(date +%s)
python3 "$PY" create --count "$COUNT" --image "$REF@$digest" --interval 1m
say "created in $(($(date +%s) - t0)) s"

PORT=$(free_port)
ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
env -u SWARMKEEPER_ADMIN_PASSWORD_FILE -u SWARMKEEPER_REPORT_SECRET_FILE \
    SWARMKEEPER_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
    "$SK" server --listen "127.0.0.1:$PORT" --state-dir "$T/state" \
    --admin-password-file "$T/no-such-file" --docker-config "$T/server-config.json" \
    >"$T/server.log" 2>&1 &
SERVER_PID=$!
say "server started (pid $SERVER_PID); warming up for $WARMUP s"
sleep "$WARMUP"
kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited: $(tail -n 5 "$T/server.log")"

# HEADs are counted from the registry's log by the time it logged each one, over exactly
# WINDOW seconds from the instant the window opens: what the measuring itself takes (reading
# /proc, listing the services) stays out of the count. (Counting log lines before and after
# `sleep WINDOW` counted those ~1 s too: the 1.01 per service per interval of the first run.)
say "measuring for $WINDOW s"
versions_before=$(python3 "$PY" versions)
before=$(python3 "$PY" usage --pid "$SERVER_PID")
window_start=$(date +%s.%N)
sleep "$WINDOW"
after=$(python3 "$PY" usage --pid "$SERVER_PID")
versions_after=$(python3 "$PY" versions)
sleep 2 # the last requests of the window are logged
heads=$(python3 "$PY" heads --log "$T/registry.log" --start "$window_start" --seconds "$WINDOW")
failed=$(grep -c 'auto-deploy check failed' "$T/server.log" || true)

python3 - "$before" "$after" "$versions_before" "$versions_after" "$heads" "$WINDOW" "$COUNT" "$failed" <<'PY'
import json, sys
b, a, vb, va, h = (json.loads(x) for x in sys.argv[1:6])
window, count, failed = (int(x) for x in sys.argv[6:9])
heads = h["heads"]
per_minute = heads * 60 / window
cpu = (a["cpu_seconds"] - b["cpu_seconds"]) / window * 100
print(f"services followed:          {count} (interval 1m, 0 replicas)")
print(f"registry HEADs in {window} s:     {heads} = {per_minute:.0f} per minute = {per_minute / count:.3f} per service per interval = {heads * 3600 / window / count:.1f} per service per hour")
print(f"  of which 401 (challenges): {h['unauthorized']}")
print(f"failed checks (server log): {failed}")
print(f"server CPU:                 {cpu:.2f} % of one core over the window")
print(f"server memory:              VmRSS {a['rss_kib'] / 1024:.1f} MiB, VmHWM {a['hwm_kib'] / 1024:.1f} MiB")
print(f"spec writes in the window:  {va['version_sum'] - vb['version_sum']} (summed service versions {vb['version_sum']} -> {va['version_sum']}, {va['services']} services)")
PY
