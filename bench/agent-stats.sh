#!/usr/bin/env bash
# The agent's cost of container statistics (--stats-interval) at 100 task containers: its CPU
# time (user and system apart, from /proc/PID/stat) per second of wall time over a few minutes
# and its peak resident memory, with statistics at the default 10 s and with them off
# (--stats-interval 0), beside `docker stats --no-stream` on the same containers (what people
# use instead; cAdvisor's image cannot be pulled here). Issue 15's target: statistics at 100
# containers, 10 s interval, cost at most 1 % of one core.
#
# Starts COUNT `busybox sleep` containers (64 MiB limit) on the host engine, named
# skbstats-<pid>-N and carrying the labels Swarm puts on task containers
# (com.docker.swarm.service.name, .task.id, .task.name, com.docker.stack.namespace), so the
# agent samples each one as a task; their cgroups are real; they are removed at the end (also
# on failure or Ctrl-C). The agent runs from the release binary with a policy that collects
# nothing (--high-threshold 100, --min-age 1h, --container-min-age 1h, --interval 1h), on
# 127.0.0.1. ROUNDS rounds, each measuring both settings (the order swapped every other round,
# so that load from other work hits both alike): wait until the first pass exposed every
# container, then WINDOW seconds of the agent's utime and stime, dockerd's CPU time (the agent
# lists containers once a pass) and the load average; the agent's VmHWM at the end. Then
# ROUNDS rounds of `docker stats --no-stream`.
#
# Usage: bench/agent-stats.sh     (as root, after scripts/ensure-engine.sh)
# Env:   COUNT (100), WINDOW (180), ROUNDS (2), SWARMKEEPER, BENCH_KEEP (see bench/lib/common.sh)
# Needs: docker CLI, curl, busybox-static. Takes: about 2 x ROUNDS x WINDOW seconds, plus a
# minute to start and remove the containers.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

COUNT=${COUNT:-100}
WINDOW=${WINDOW:-180}
ROUNDS=${ROUNDS:-2}
PREFIX=skbstats-$$
IMAGE=$PREFIX:busybox
PORT=$((20000 + $$ % 20000))

need_root
need_cmd docker "run scripts/ensure-engine.sh"
need_cmd curl "apt-get install -y curl"
SK=$(swarmkeeper_bin)

AGENT_PID=
stop_all() {
    [[ -n $AGENT_PID ]] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null || true
    AGENT_PID=
    docker ps -aq --filter "name=^$PREFIX-" | xargs -r docker rm -f >/dev/null 2>&1 || true
    docker rmi "$IMAGE" >/dev/null 2>&1 || true
    cleanup
}
trap stop_all EXIT
trap 'exit 130' INT TERM
bench_tmp
T=$BENCH_TMP

mkdir -p "$T/ctx"
cp /bin/busybox "$T/ctx/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\n' >"$T/ctx/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" "$T/ctx" >/dev/null
say "starting $COUNT containers labelled as Swarm tasks"
for n in $(seq 1 "$COUNT"); do
    task=$(printf 'benchtask%016d' "$n")
    docker run -d --name "$PREFIX-$n" -m 64m \
        --label com.docker.stack.namespace="$PREFIX" \
        --label com.docker.swarm.service.name="${PREFIX}_web" \
        --label com.docker.swarm.task.id="$task" \
        --label com.docker.swarm.task.name="${PREFIX}_web.$n.$task" \
        "$IMAGE" /bin/busybox sleep 3600 >/dev/null
done

hz=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# utime and stime apart: "U S". The name in field 2 has no spaces here (swarmkeeper, dockerd).
user_sys() { awk '{ print $14, $15 }' "/proc/$1/stat"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
dockerd_pid=$(pgrep -xo dockerd)

# measure STATS_INTERVAL: prints one line of figures.
measure() {
    local interval=$1 state=$T/state-$1 start end u0 s0 u1 s1 d0 d1 hwm series l0 l1
    rm -rf "$state"
    mkdir -p "$state"
    "$SK" agent --listen "127.0.0.1:$PORT" --state-dir "$state" --stats-interval "$interval" \
        --interval 1h --high-threshold 100 --low-threshold 99 --min-age 1h \
        --container-min-age 1h >"$T/agent-$interval.log" 2>&1 &
    AGENT_PID=$!
    # Ready: every container exposed (with statistics on), or /metrics answering (off).
    for _ in $(seq 1 300); do
        series=$(curl -sf "http://127.0.0.1:$PORT/metrics" | grep -c "^swarmkeeper_container_memory_bytes{.*stack=\"$PREFIX\"" || true)
        if [[ $interval == 0 ]]; then
            curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
        elif [[ $series -ge $COUNT ]]; then
            break
        fi
        sleep 0.2
    done
    # Let the startup GC pass and the first sampling settle.
    sleep 2
    read -r u0 s0 < <(user_sys "$AGENT_PID")
    d0=$(ticks "$dockerd_pid")
    l0=$(loadavg)
    start=$(date +%s.%N)
    sleep "$WINDOW"
    end=$(date +%s.%N)
    read -r u1 s1 < <(user_sys "$AGENT_PID")
    d1=$(ticks "$dockerd_pid")
    l1=$(loadavg)
    hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$AGENT_PID/status")
    series=$(curl -sf "http://127.0.0.1:$PORT/metrics" | grep -c "^swarmkeeper_container_memory_bytes{.*stack=\"$PREFIX\"" || true)
    kill "$AGENT_PID"
    wait "$AGENT_PID" 2>/dev/null || true
    AGENT_PID=
    awk -v i="$interval" -v s="$start" -v e="$end" -v u=$((u1 - u0)) -v k=$((s1 - s0)) \
        -v d=$((d1 - d0)) -v hz="$hz" -v hwm="$hwm" -v n="$series" -v l0="$l0" -v l1="$l1" \
        'BEGIN { w = e - s; printf "  --stats-interval %-4s %3d containers exposed: agent %.2f s CPU (user %.2f, system %.2f) in %.0f s = %.3f %% of a core (user alone %.3f %%); dockerd %.2f s CPU = %.2f %%; agent VmHWM %.1f MiB; load %s -> %s\n", i, n, (u + k) / hz, u / hz, k / hz, w, 100 * (u + k) / hz / w, 100 * u / hz / w, d / hz, 100 * d / hz / w, hwm / 1024, l0, l1 }'
}

echo "swarmkeeper agent ($SK), $COUNT task containers, ${WINDOW} s windows, $ROUNDS rounds:"
for round in $(seq 1 "$ROUNDS"); do
    if ((round % 2)); then
        measure 10s
        measure 0
    else
        measure 0
        measure 10s
    fi
done

echo "docker stats --no-stream, the same $COUNT containers ($ROUNDS rounds):"
for _ in $(seq 1 "$ROUNDS"); do
    before=$(ticks "$dockerd_pid")
    l0=$(loadavg)
    start=$(date +%s.%N)
    cli=$( { /usr/bin/time -f '%U %S %M' docker stats --no-stream --format '{{.ID}}' >/dev/null; } 2>&1 | tail -1)
    end=$(date +%s.%N)
    after=$(ticks "$dockerd_pid")
    awk -v s="$start" -v e="$end" -v c="$cli" -v d=$((after - before)) -v hz="$hz" -v l0="$l0" \
        'BEGIN { split(c, u, " "); printf "  %.2f s wall, CLI %.2f s CPU (user %.2f; max RSS %.1f MiB), dockerd %.2f s CPU; every 10 s that would be %.1f %% of a core; load %s\n", e - s, u[1] + u[2], u[1], u[3] / 1024, d / hz, 100 * (u[1] + u[2] + d / hz) / 10, l0 }'
done
