#!/usr/bin/env bash
# A deploy stopped by SIGTERM (a CI job cancelled, `timeout`), then the next deploy of the
# stack: how long it takes, and whether it waited for the stopped deploy's lock.
#
# For each binary in turns (BASELINE, then SWARMKEEPER), ROUNDS times: deploy a one-service
# stack, start a deploy of a revision that never converges (a memory reservation no node has),
# SIGTERM it after 3 s, and time the next deploy of the first file. Prints one line per run
# with the exit code of the stopped deploy and the load average. Everything is named
# skbs<pid>... and removed. Runs as root on a swarm manager; needs /bin/busybox.
#
# Env: SWARMKEEPER (required), BASELINE (optional), ROUNDS (2).
set -euo pipefail
: "${SWARMKEEPER:?the swarmkeeper binary to measure}"
ROUNDS=${ROUNDS:-2}
PREFIX=skbs$(( $$ % 100000 ))
tmp=$(mktemp -d)
stacks=()
# A stack, its deploy history and its lock (`docker stack rm` leaves both on purpose).
remove_stack() {
  docker stack rm "$1" >/dev/null 2>&1 || true
  docker config ls -q --filter "label=swarmkeeper.revision.stack=$1" | xargs -r docker config rm >/dev/null
  docker config rm "swarmkeeper-lock-$1" >/dev/null 2>&1 || true
}
cleanup() {
  for s in "${stacks[@]}"; do remove_stack "$s"; done
  sleep 5; docker image rm "$PREFIX:ok" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
cp /bin/busybox "$tmp/"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox","sh","-c","trap \\"exit 0\\" TERM; while true; do /bin/busybox sleep 1; done"]\n' > "$tmp/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$PREFIX:ok" "$tmp" >/dev/null 2>&1
printf 'services:\n  web:\n    image: %s:ok\n' "$PREFIX" > "$tmp/ok.yml"
printf 'services:\n  web:\n    image: %s:ok\n    environment: {REV: "2"}\n    deploy:\n      resources:\n        reservations:\n          memory: 100000G\n' "$PREFIX" > "$tmp/slow.yml"
binaries=()
[ -n "${BASELINE:-}" ] && binaries+=("baseline=$BASELINE")
binaries+=("swarmkeeper=$SWARMKEEPER")
for round in $(seq "$ROUNDS"); do
  for entry in "${binaries[@]}"; do
    name=${entry%%=*}; bin=${entry#*=}; stack=$PREFIX$round${name:0:1}; stacks+=("$stack")
    "$bin" deploy --progress plain --no-resolve-image -c "$tmp/ok.yml" "$stack" >/dev/null 2>&1
    "$bin" deploy --progress plain --no-resolve-image -c "$tmp/slow.yml" "$stack" >/dev/null 2>&1 & pid=$!
    sleep 3; kill -TERM "$pid"; code=0; wait "$pid" || code=$?
    start=$(date +%s.%N)
    "$bin" deploy --progress plain --no-resolve-image -c "$tmp/ok.yml" "$stack" > "$tmp/next.out" 2>&1
    end=$(date +%s.%N)
    waited=$(grep -c "waiting for the deploy" "$tmp/next.out" || true)
    printf 'round %s %s: stopped deploy exit %s, next deploy %.1f s (waited for the lock: %s), load %s\n' \
      "$round" "$name" "$code" "$(echo "$end - $start" | bc)" "$waited" "$(cut -d' ' -f1-3 /proc/loadavg)"
    remove_stack "$stack"
  done
done
