#!/usr/bin/env bash
# The agent's memory around bursts of 10,000 engine events on a node with 1,000 images.
#
# A lab engine (lab/small-engine.sh, 512m tmpfs) gets 1,000 distinct images (one generated
# docker-archive: a shared busybox layer, a distinct config each). The agent starts with
# thresholds that delete nothing (--high-threshold 100 --low-threshold 99 --min-age 1h
# --interval 1h), then BURSTS bursts of 10,000 events each are sent over the engine's socket
# by 4 threads (bench/lib/agent_burst.py): 2 x 1,920 image tag/untag, 2 x 2,879 container
# create/destroy from the images' tags, 100 full container runs (create, start, die,
# destroy), and a marker container whose image no other event names. For each burst: the
# agent's VmRSS before, right after and 10 s after, VmHWM, RssAnon; when the agent had
# recorded the marker's use in its state database (it handles events in order, so then it
# has worked through the burst); when its CPU time stopped moving; its CPU time; the GC
# passes the burst triggered (from /metrics); the engine's CPU time. Then the same burst
# once more with no agent running, for the engine's CPU without it.
#
# At the end, where the agent's resident memory is: /proc/PID/smaps summed per kind of
# mapping (the binary's code, its read-only data, its writable data, heap, the rest).
#
# NODE=layers gives the node of bench/snapshot-vs-df.sh instead (1g tmpfs): ten layers per
# image (a shared busybox layer, four of one of ten bases, five of its own) and 100 containers
# (60 exited, 35 created, 5 running) besides the burst's.
#
# Usage: bench/agent-event-burst.sh     (as root, after scripts/ensure-engine.sh)
# Env:   BURSTS (3), EVENTS (10000), IMAGES (1000), NODE (flat | layers), BASELINE (1: also
#        the burst without the agent), BENCH_LAB (the lab engine's name, skbburst),
#        REPORT (1: the agents report to a receiver that answers 200, as with --server),
#        CONTAINERS (binaries, space-separated: each also as an agent in its `FROM scratch`
#        image, packaging/build-image.sh, run on the host engine with the options the stack
#        file deploy/swarmkeeper.yml gives the agent's service, Docker's default seccomp
#        profile included; see start_container in bench/lib/agent_burst.py),
#        CODE_PAGES (a file: the first agent's resident code pages at the end, as file
#        offsets, for bench/agent-code-order.sh),
#        SWARMKEEPER, SWARMKEEPER_ALSO (more binaries, space-separated: agents side by side
#        with the first on the same node, each seeing the same bursts), BENCH_KEEP (see
#        bench/lib/common.sh), CACHE (warm: each binary read into the page cache before its
#        agent starts, as after `docker pull` or a build | cold: its unmapped cached pages
#        dropped first | as-is)
# Needs: docker CLI, dockerd, python3. Takes: about 2 minutes with the defaults.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

BURSTS=${BURSTS:-3}
EVENTS=${EVENTS:-10000}
IMAGES=${IMAGES:-1000}
BASELINE=${BASELINE:-1}
NODE=${NODE:-flat}
CACHE=${CACHE:-warm}
NAME=${BENCH_LAB:-skbburst}
[[ $NODE == flat || $NODE == layers ]] || die "NODE=$NODE: flat or layers"
[[ $CACHE == warm || $CACHE == cold || $CACHE == as-is ]] || die "CACHE=$CACHE: warm, cold or as-is"

need_root
need_cmd docker "run scripts/ensure-engine.sh"
need_cmd python3 "apt-get install -y python3"
SK=$(swarmkeeper_bin)

trap cleanup EXIT
trap 'exit 130' INT TERM
bench_tmp
T=$BENCH_TMP

if [[ $NODE == layers ]]; then SIZE=1g; else SIZE=512m; fi
say "starting a lab engine ($SIZE tmpfs) and loading $IMAGES images ($NODE)"
lab_up "$NAME" "$SIZE"
HOST=$LAB_HOST
export DOCKER_HOST=$HOST
if [[ $NODE == layers ]]; then
    load_images "$HOST" --count "$IMAGES" --prefix bench/n --bytes 1024 \
        --bases 10 --base-layers 4 --own-layers 5
    python3 "$BENCH_LIB/containers.py" --prefix bench/n --images "$IMAGES" \
        --exited 60 --created 35 --running 5
else
    load_images "$HOST" --count "$IMAGES" --prefix bench/n --no-unique-layer
fi
[[ $(docker images -q | wc -l) -eq $IMAGES ]] || die "expected $IMAGES images on the lab engine"
ENGINE_PID=$(cat "/run/swarmkeeper-lab/$NAME/docker.pid")

say "agent(s) + $BURSTS burst(s) of $EVENTS events"
also=()
for bin in ${SWARMKEEPER_ALSO:-}; do
    [[ -x $bin ]] || die "SWARMKEEPER_ALSO: $bin is not an executable"
    also+=(--agent "$bin")
done
images=()
containers=()
n=0
for bin in ${CONTAINERS:-}; do
    [[ -x $bin ]] || die "CONTAINERS: $bin is not an executable"
    tag=skbench-agent-$$-$n:latest
    n=$((n + 1))
    DOCKER_HOST=unix:///var/run/docker.sock "$REPO/packaging/build-image.sh" --binary "$bin" "$tag" >/dev/null ||
        die "cannot build an image of $bin"
    images+=("$tag")
    containers+=(--container "$tag")
done
remove_images() {
    local host=unix:///var/run/docker.sock left
    left=$(docker -H $host ps -aq --filter "name=skbench-agent-$$-")
    [[ -z $left ]] || docker -H $host rm -f $left >/dev/null 2>&1 || true
    [[ ${#images[@]} -eq 0 ]] || docker -H $host rmi "${images[@]}" >/dev/null 2>&1 || true
}
on_exit() {
    local rc=$?
    remove_images
    (exit $rc)
    cleanup
}
trap on_exit EXIT
BENCH_RUN=$$ python3 "$BENCH_LIB/agent_burst.py" --agent "$SK" "${also[@]}" "${containers[@]}" --state-dir "$T/state" --prefix bench/n \
    --images "$IMAGES" --events "$EVENTS" --bursts "$BURSTS" --engine-pid "$ENGINE_PID" \
    --cache "$CACHE" --log "$T/agent.log" --pidfile "$T/agent.pid" \
    ${CODE_PAGES:+--code-pages "$CODE_PAGES"} $([[ ${REPORT:-0} == 1 ]] && echo --report) >"$T/agent.json"
remove_images
baseline=()
if [[ $BASELINE == 1 ]]; then
    say "the same burst with no agent running"
    python3 "$BENCH_LIB/agent_burst.py" --prefix bench/n --images "$IMAGES" --events "$EVENTS" \
        --engine-pid "$ENGINE_PID" >"$T/baseline.json"
    baseline=("$T/baseline.json")
fi

echo
echo "== agent-event-burst =="
echo "machine: $(machine_line)"
echo "engine:  $(engine_version "$HOST"), lab tmpfs $SIZE, node $NODE ($(docker images -q | wc -l) images, $(docker ps -aq | wc -l) containers)"
echo "binary:  $SK ($("$SK" --version)); bench scripts from $(source_line)"
echo "cache:   $CACHE (the binaries' page cache when the agents started)"
echo "agent:   $SK agent --high-threshold 100 --low-threshold 99 --min-age 1h --interval 1h --listen 127.0.0.1:PORT --state-dir TMP"
python3 "$BENCH_LIB/burst_report.py" "$T/agent.json" "${baseline[@]}"
