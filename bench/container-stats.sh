#!/usr/bin/env bash
# Per-container resource figures for 100 running containers: swarmkeeper's cgroup reader
# (crates/cgroup, criterion: crates/cgroup/benches/sweep.rs) vs what people use instead, the
# engine's stats (`docker stats --no-stream`, which asks `GET /containers/{id}/stats` once per
# container and waits for two CPU samples).
#
# Starts 100 `busybox sleep` containers (64 MiB limit) on the host engine, named
# skcgstats-<pid>-N, times `docker stats --no-stream` ROUNDS times, removes them, then runs
# the criterion bench (which starts and removes 100 of its own).
#
# Usage: bench/container-stats.sh       (as root, after scripts/ensure-engine.sh)
# Env:   ROUNDS (5)
# Needs: docker CLI, cargo, busybox-static.
# Takes: about 3 minutes.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
PREFIX=skcgstats-$$
IMAGE=$PREFIX:busybox

need_cmd docker "run scripts/ensure-engine.sh"
need_cmd cargo "install Rust"

cleanup() {
    docker ps -aq --filter "name=^$PREFIX-" | xargs -r docker rm -f >/dev/null 2>&1 || true
    docker rmi "$IMAGE" >/dev/null 2>&1 || true
    [[ -n ${CTX:-} ]] && rm -rf "$CTX"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CTX=$(mktemp -d)
cp /bin/busybox "$CTX/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\n' >"$CTX/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" "$CTX" >/dev/null 2>&1
say "starting 100 containers"
for n in $(seq 1 100); do
    docker run -d --name "$PREFIX-$n" -m 64m "$IMAGE" /bin/busybox sleep 3600 >/dev/null
done

echo "docker stats --no-stream, 100 containers (wall time, CPU time of the CLI and dockerd):"
dockerd_pid=$(pgrep -xo dockerd)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
for r in $(seq 1 "$ROUNDS"); do
    before=$(ticks "$dockerd_pid")
    start=$(date +%s.%N)
    cli=$( { /usr/bin/time -f '%U %S' docker stats --no-stream --format '{{.ID}}' >/dev/null; } 2>&1 | tail -1)
    end=$(date +%s.%N)
    after=$(ticks "$dockerd_pid")
    awk -v s="$start" -v e="$end" -v c="$cli" -v d=$((after - before)) -v hz="$hz" -v r="$r" \
        'BEGIN { split(c, u, " "); printf "  round %d: %.2f s wall, CLI %.2f s CPU, dockerd %.2f s CPU\n", r, e - s, u[1] + u[2], d / hz }'
done
cleanup

echo "swarmkeeper-cgroup (criterion): one sweep of 100 containers and the node"
cargo bench -q -p swarmkeeper-cgroup --bench sweep -- --warm-up-time 1 --measurement-time 5 2>&1 |
    grep -E '^(read|[[:space:]]+time:)'
