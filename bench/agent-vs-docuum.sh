#!/usr/bin/env bash
# `swarmkeeper agent` vs docuum on the same small disk: time to get below the low threshold
# and peak resident memory.
#
# Setup, identical and fresh for every run of each tool: a lab engine (lab/small-engine.sh)
# whose tmpfs data root is sized so that six 17 MB images fill it to ~56%; one of the six
# (app/img:0) is used by a running `sleep` container. The images are loaded from one
# generated docker-archive at 256m, then the tmpfs is shrunk in place to the calibrated size
# (a load needs room for the archive too).
#
# Targets: the agent runs with --high-threshold HIGH --low-threshold LOW (50/15: all five
# unused images must go); docuum with the absolute --threshold equivalent to LOW, i.e.
# floor(capacity * LOW / 100) minus the bytes on the data root that are not image layers
# (docuum counts image bytes from `docker system df`, the agent the whole filesystem).
#
# Measured (bench/lib/race.py): from spawn, statvfs of the data root every 10 ms until
# usage = 100 - floor(avail*100/capacity) <= LOW; VmHWM/VmRSS of the tool's own process
# from /proc; the summed RSS of its whole session (docuum runs the docker CLI). The first run
# of each tool stays IDLE seconds after the target (the agent's --interval 30s pass falls in
# it) and reports VmRSS then; the others stop HOLD seconds after the target. Runs alternate
# which tool goes first.
#
# Usage: bench/agent-vs-docuum.sh      (as root, after scripts/ensure-engine.sh)
# Env:   RUNS (7), HIGH (50), LOW (15), FILL (56), IDLE (35), HOLD (1),
#        SWARMKEEPER, DOCUUM, BENCH_KEEP (see bench/lib/common.sh)
# Needs: docker CLI, dockerd, python3, curl, docuum (cargo install docuum --root /tmp/docuum-bin).
# Takes: about 2.5 minutes with the defaults.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

RUNS=${RUNS:-7}
HIGH=${HIGH:-50}
LOW=${LOW:-15}
FILL=${FILL:-56}
IDLE=${IDLE:-35}
HOLD=${HOLD:-1}
IMAGE_BYTES=17000000
NAME=skbrace

need_root
need_cmd docker "run scripts/ensure-engine.sh"
need_cmd python3 "apt-get install -y python3"
need_cmd curl "apt-get install -y curl"
SK=$(swarmkeeper_bin)
DOCUUM_BIN=$(docuum_bin)

trap cleanup EXIT
trap 'exit 130' INT TERM
bench_tmp
T=$BENCH_TMP

sock_of() { echo "${1#unix://}"; }

# Brings up a fresh lab with the six images and the running container; SIZE empty = 256m.
setup() { # setup SIZE -> sets HOST, ROOT, IN_USE
    lab_down "$NAME"
    lab_up "$NAME" 256m
    HOST=$LAB_HOST
    export DOCKER_HOST=$HOST
    load_images "$HOST" --count 6 --prefix app/img --bytes "$IMAGE_BYTES"
    docker run -d --network none app/img:0 /bin/busybox sleep 3600 >/dev/null
    IN_USE=$(docker image inspect -f '{{.Id}}' app/img:0)
    ROOT=$(docker info --format '{{.DockerRootDir}}')
    if [[ -n $1 ]]; then
        "$LAB" up "$NAME" "$1" >/dev/null 2>&1 || die "cannot shrink lab $NAME to $1"
    fi
}

fs_bytes() { # fs_bytes PATH -> "capacity used"
    python3 -c 'import os,sys; s=os.statvfs(sys.argv[1]); c=s.f_blocks*s.f_frsize; print(c, c-s.f_bavail*s.f_frsize)' "$1"
}

say "calibrating: six ${IMAGE_BYTES}-byte images, one in use"
setup ""
read -r _ used < <(fs_bytes "$ROOT")
layers=$(curl -sf --unix-socket "$(sock_of "$HOST")" http://engine/v1.41/system/df |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["LayersSize"])')
SIZE_MIB=$(python3 -c "import math; print(math.ceil($used * 100 / $FILL / 1048576))")
NON_IMAGE=$((used - layers))
CAPACITY=$((SIZE_MIB * 1048576))
DOCUUM_THRESHOLD=$((CAPACITY * LOW / 100 - NON_IMAGE))
ENGINE=$(engine_version "$HOST")
lab_down "$NAME"
say "tmpfs ${SIZE_MIB}m: used $used bytes ($layers image layers, $NON_IMAGE other); docuum --threshold '$DOCUUM_THRESHOLD B'"

run_tool() { # run_tool TOOL RUN IDLE_SECS
    local tool=$1 run=$2 idle=$3 port out
    setup "${SIZE_MIB}m"
    out=$T/$tool-$run
    mkdir -p "$out"
    if [[ $tool == agent ]]; then
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        python3 "$BENCH_LIB/race.py" --root "$ROOT" --low "$LOW" --in-use "$IN_USE" --idle "$idle" \
            --log "$out/log" --pidfile "$out/tool.pid" --probe "http://127.0.0.1:$port/metrics" -- \
            "$SK" agent --listen "127.0.0.1:$port" --state-dir "$out/state" --interval 30s \
            --min-age 0s --high-threshold "$HIGH" --low-threshold "$LOW" >"$out/result.json"
    else
        HOME=$out/home XDG_DATA_HOME=$out/home python3 "$BENCH_LIB/race.py" --root "$ROOT" \
            --low "$LOW" --in-use "$IN_USE" --idle "$idle" --log "$out/log" --pidfile "$out/tool.pid" -- \
            "$DOCUUM_BIN" --threshold "$DOCUUM_THRESHOLD B" >"$out/result.json"
    fi
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["tool"]=sys.argv[2]; r["run"]=int(sys.argv[3]); print(json.dumps(r))' \
        "$out/result.json" "$tool" "$run" >>"$T/results.jsonl"
    say "$(tail -n 1 "$T/results.jsonl" | python3 "$BENCH_LIB/race_report.py" --line)"
    lab_down "$NAME"
}

for run in $(seq 1 "$RUNS"); do
    idle=$HOLD
    ((run == 1)) && idle=$IDLE
    if ((run % 2)); then order=(agent docuum); else order=(docuum agent); fi
    for tool in "${order[@]}"; do
        run_tool "$tool" "$run" "$idle"
    done
done

echo
echo "== agent-vs-docuum =="
echo "machine: $(machine_line)"
echo "engine:  $ENGINE; lab tmpfs ${SIZE_MIB}m, six ${IMAGE_BYTES}-byte images (one in use), fill target ${FILL}%"
echo "binary:  $SK ($("$SK" --version)); bench scripts from $(source_line)"
echo "agent:   $SK agent --high-threshold $HIGH --low-threshold $LOW --min-age 0s --interval 30s --listen 127.0.0.1:PORT --state-dir TMP"
echo "docuum:  $DOCUUM_BIN --threshold '$DOCUUM_THRESHOLD B'  ($("$DOCUUM_BIN" --version 2>&1 | head -n 1))"
python3 "$BENCH_LIB/race_report.py" "$T/results.jsonl" "$LOW" "$IDLE"
