#!/usr/bin/env bash
# `swarmkeeper gc snapshot` vs `docker system df -v` on the same engine, with hyperfine.
#
# A throwaway lab engine (1g tmpfs data root, lab/small-engine.sh) gets IMAGES images, ten
# layers each: a busybox layer all share, BASE_LAYERS layers of one of BASES bases, and
# OWN_LAYERS of their own (the first 1 KiB), loaded from one generated docker-archive; and 100
# containers (60 exited, 35 created, 5 running `sleep`). `gc snapshot` lists every image's
# layers. Then:
#   - steady state: `gc snapshot` with a state database that already knows every image,
#     vs `docker system df -v`, with the engine's own `GET /system/df` through curl as the
#     floor both stand on (hyperfine -N, warmup 3);
#   - first run: `gc snapshot` with an empty state directory (it inspects every image it
#     does not know; the directory is removed before each run) vs `docker system df -v`.
# Each comparison runs ROUNDS times with RUNS runs per command, the order of the commands
# reversed every other round so that a busy neighbour on a shared machine hurts both alike;
# the runs are pooled. SWARMKEEPER_ALSO names more binaries (an earlier build, say) whose
# `gc snapshot` runs in the same rounds, each with a state directory of its own, and whose
# snapshot is compared with the first binary's (the same images, layers and containers).
#
# Usage: bench/snapshot-vs-df.sh          (as root, after scripts/ensure-engine.sh)
# Env:   RUNS (10), ROUNDS (4), IMAGES (1000), BASES (10), BASE_LAYERS (4), OWN_LAYERS (5),
#        BENCH_LAB (the lab engine's name, skbsnap), SWARMKEEPER, SWARMKEEPER_ALSO (more
#        binaries, space-separated), BENCH_KEEP (see
#        bench/lib/common.sh). IMAGES=300 BASES=0 BASE_LAYERS=0
#        OWN_LAYERS=1 is the node of the figures before layers were read.
# Needs: docker CLI, dockerd, hyperfine (apt-get install -y hyperfine), python3, curl.
# Takes: about 1 minute.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

RUNS=${RUNS:-10}
ROUNDS=${ROUNDS:-4}
IMAGES=${IMAGES:-1000}
BASES=${BASES:-10}
BASE_LAYERS=${BASE_LAYERS:-4}
OWN_LAYERS=${OWN_LAYERS:-5}
EXITED=60 CREATED=35 RUNNING=5

need_root
need_cmd docker "run scripts/ensure-engine.sh"
need_cmd hyperfine "apt-get install -y hyperfine"
need_cmd python3 "apt-get install -y python3"
need_cmd curl "apt-get install -y curl"
SK=$(swarmkeeper_bin)

trap cleanup EXIT
trap 'exit 130' INT TERM

bench_tmp
T=$BENCH_TMP
say "starting a lab engine with a 1g tmpfs data root"
lab_up "${BENCH_LAB:-skbsnap}" 1g
HOST=$LAB_HOST
export DOCKER_HOST=$HOST
say "loading $IMAGES images"
load_images "$HOST" --count "$IMAGES" --prefix bench/img --bytes 1024 \
    --bases "$BASES" --base-layers "$BASE_LAYERS" --own-layers "$OWN_LAYERS"
say "creating $((EXITED + CREATED + RUNNING)) containers ($EXITED exited, $CREATED created, $RUNNING running)"
python3 "$BENCH_LIB/containers.py" --prefix bench/img --images "$IMAGES" \
    --exited "$EXITED" --created "$CREATED" --running "$RUNNING"

images=$(docker images -q | wc -l)
containers=$(docker ps -aq | wc -l)
"$SK" gc snapshot --state-dir "$T/state" -o "$T/snapshot.json"
snap_bytes=$(stat -c %s "$T/snapshot.json")
also=()
for bin in ${SWARMKEEPER_ALSO:-}; do
    [[ -x $bin ]] || die "SWARMKEEPER_ALSO: $bin is not an executable"
    also+=("$bin")
done
for i in "${!also[@]}"; do
    "${also[$i]}" gc snapshot --state-dir "$T/state-also-$i" -o "$T/snapshot-also-$i.json"
    python3 - "$T/snapshot.json" "$T/snapshot-also-$i.json" "${also[$i]}" <<'PY' || die "the snapshots differ"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
# Live values: when it was taken, the bytes free, and the last use of images that run now.
# The engine lists images and containers in no fixed order.
for s in (a, b):
    s.pop("taken_at"); s.pop("filesystem")
    for i in s["images"]:
        i.pop("last_used")
    for key in ("images", "containers"):
        s[key] = {x["id"]: x for x in s[key]}
for key in sorted(set(a) | set(b)):
    if a.get(key) != b.get(key):
        if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
            x, y = a[key], b[key]
            for id in sorted(set(x) | set(y)):
                if x.get(id) != y.get(id):
                    sys.exit(f"bench: {sys.argv[3]}'s snapshot differs in {key!r}, {id}:\n"
                             f"  {sys.argv[1]}: {json.dumps(x.get(id))}\n  {sys.argv[2]}: {json.dumps(y.get(id))}")
        sys.exit(f"bench: {sys.argv[3]}'s snapshot differs in {key!r}")
print(f"bench: {sys.argv[3]}'s snapshot is the same (but for the time, free bytes and last uses)", file=sys.stderr)
PY
done
layers=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(sum(len(i.get("layers") or []) for i in s["images"]), sum(1 for i in s["images"] if i.get("layers") is not None))' "$T/snapshot.json")

# The machine may be shared: each comparison runs in ROUNDS rounds of RUNS runs per command,
# the order of the commands reversed every other round, and the runs are pooled.
SNAP_STEADY=(-n "swarmkeeper gc snapshot (steady state)" "$SK gc snapshot --state-dir $T/state -o /dev/null")
DF=(-n "docker system df -v" "docker system df -v")
FLOOR=(-n "(floor: GET /system/df alone, curl)" "curl -sf --unix-socket ${HOST#unix://} -o /dev/null http://engine/v1.41/system/df")
SNAP_FIRST=(-n "swarmkeeper gc snapshot (first run)" "$SK gc snapshot --state-dir $T/first -o /dev/null")
for i in "${!also[@]}"; do
    SNAP_STEADY+=(-n "gc snapshot (steady state) of ${also[$i]}" "${also[$i]} gc snapshot --state-dir $T/state-also-$i -o /dev/null")
    SNAP_FIRST+=(-n "gc snapshot (first run) of ${also[$i]}" "${also[$i]} gc snapshot --state-dir $T/first-also-$i -o /dev/null")
done
steady=() first=()
for round in $(seq 1 "$ROUNDS"); do
    say "round $round/$ROUNDS, steady state: gc snapshot (state known) vs docker system df -v"
    if ((round % 2)); then cmds=("${SNAP_STEADY[@]}" "${DF[@]}" "${FLOOR[@]}"); else cmds=("${FLOOR[@]}" "${DF[@]}" "${SNAP_STEADY[@]}"); fi
    hyperfine -N --style basic --warmup 3 --runs "$RUNS" --export-json "$T/steady-$round.json" "${cmds[@]}" >&2
    steady+=("$T/steady-$round.json")
    say "round $round/$ROUNDS, first run: gc snapshot with an empty state directory"
    if ((round % 2)); then cmds=("${SNAP_FIRST[@]}" "${DF[@]}"); else cmds=("${DF[@]}" "${SNAP_FIRST[@]}"); fi
    hyperfine --style basic --runs "$RUNS" --prepare "rm -rf $T/first $T/first-also-*" --export-json "$T/first-$round.json" "${cmds[@]}" >&2
    first+=("$T/first-$round.json")
done

echo
echo "== snapshot-vs-df =="
echo "machine: $(machine_line)"
echo "engine:  $(engine_version "$HOST"), lab data root tmpfs 1g"
echo "binary:  $SK ($("$SK" --version)) ${also[*]}; bench scripts from $(source_line)"
echo "node:    $images images, $containers containers ($EXITED exited, $CREATED created, $RUNNING running); snapshot $snap_bytes bytes"
echo "layers:  ${layers% *} listed in the snapshot, for ${layers#* } images"
python3 "$BENCH_LIB/hfreport.py" "steady state ($ROUNDS rounds x $RUNS runs, warmup 3 per round)" "${steady[@]}"
python3 "$BENCH_LIB/hfreport.py" "first run (state dir removed before each run; $ROUNDS rounds x $RUNS runs)" "${first[@]}"
