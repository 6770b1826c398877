#!/usr/bin/env bash
# The agent's cost of container statistics (--stats-interval) at 100 task containers: its CPU
# time per second of wall time and its peak resident memory, with statistics at the default
# 10 s and with them off (--stats-interval 0), beside `docker stats --no-stream` on the same
# containers (what people use instead; cAdvisor's image cannot be pulled here).
#
# Starts COUNT `busybox sleep` containers (64 MiB limit) on the host engine, named
# skbstats-<pid>-N and carrying the labels Swarm puts on task containers
# (com.docker.swarm.service.name, .task.id, .task.name, com.docker.stack.namespace), so the
# agent samples each one as a task; their cgroups are real. The agent runs from the release
# binary with a policy that collects nothing (--high-threshold 100, --min-age 1h,
# --container-min-age 1h, --interval 1h), on 127.0.0.1. For each setting it waits until the
# first pass exposed every container, then measures WINDOW seconds: the agent's CPU time
# (utime + stime), dockerd's CPU time (the agent lists containers once a pass), and the
# agent's VmHWM at the end.
#
# Usage: bench/agent-stats.sh     (as root, after scripts/ensure-engine.sh)
# Env:   COUNT (100), WINDOW (60), SWARMKEEPER, BENCH_KEEP (see bench/lib/common.sh)
# Needs: docker CLI, curl, busybox-static. Takes: about 3 minutes with the defaults.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

COUNT=${COUNT:-100}
WINDOW=${WINDOW:-60}
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
dockerd_pid=$(pgrep -xo dockerd)

# measure STATS_INTERVAL: prints one line of figures.
measure() {
    local interval=$1 state=$T/state-$1 start end a0 a1 d0 d1 hwm series
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
    a0=$(ticks "$AGENT_PID")
    d0=$(ticks "$dockerd_pid")
    start=$(date +%s.%N)
    sleep "$WINDOW"
    end=$(date +%s.%N)
    a1=$(ticks "$AGENT_PID")
    d1=$(ticks "$dockerd_pid")
    hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$AGENT_PID/status")
    series=$(curl -sf "http://127.0.0.1:$PORT/metrics" | grep -c "^swarmkeeper_container_memory_bytes{.*stack=\"$PREFIX\"" || true)
    kill "$AGENT_PID"
    wait "$AGENT_PID" 2>/dev/null || true
    AGENT_PID=
    awk -v i="$interval" -v s="$start" -v e="$end" -v a=$((a1 - a0)) -v d=$((d1 - d0)) \
        -v hz="$hz" -v hwm="$hwm" -v n="$series" \
        'BEGIN { w = e - s; printf "  --stats-interval %-4s %3d containers exposed: agent %.2f s CPU in %.0f s = %.3f %% of a core; dockerd %.2f s CPU = %.3f %%; agent VmHWM %.1f MiB\n", i, n, a / hz, w, 100 * a / hz / w, d / hz, 100 * d / hz / w, hwm / 1024 }'
}

echo "swarmkeeper agent ($SK), $COUNT task containers, ${WINDOW} s windows:"
measure 10s
measure 0

echo "docker stats --no-stream, the same $COUNT containers (one round):"
before=$(ticks "$dockerd_pid")
start=$(date +%s.%N)
cli=$( { /usr/bin/time -f '%U %S %M' docker stats --no-stream --format '{{.ID}}' >/dev/null; } 2>&1 | tail -1)
end=$(date +%s.%N)
after=$(ticks "$dockerd_pid")
awk -v s="$start" -v e="$end" -v c="$cli" -v d=$((after - before)) -v hz="$hz" \
    'BEGIN { split(c, u, " "); printf "  %.2f s wall, CLI %.2f s CPU (max RSS %.1f MiB), dockerd %.2f s CPU\n", e - s, u[1] + u[2], u[3] / 1024, d / hz }'
