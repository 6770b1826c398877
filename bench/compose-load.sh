#!/usr/bin/env bash
# Reading stack files: runs the criterion benchmark crates/compose/benches/load.rs (`load` and
# `load` + `stack_spec` of generated stacks of 50 and 200 services, in process, one core) and,
# on the same files, times `docker stack config -c FILE` (the docker CLI reading, interpolating,
# validating and printing the file: a whole process, so its startup is in the figure).
#
# Usage: bench/compose-load.sh [CRITERION_ARG...]
# Env:   BENCH_TARGET (target/bench): cargo's target dir.
#        DOCKER (docker): the docker CLI to compare with; needs `docker stack config`
#        (docker 20.10's CLI has no `-c` for it, newer ones do). Skipped when it has none.
# Needs: cargo, python3. Takes: about a minute once built; the first build takes minutes.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

need_cmd cargo "install Rust (rustup)"
need_cmd python3 "apt-get install -y python3"
DOCKER=$(command -v "${DOCKER:-docker}") || die "docker is missing"

BENCH_TMP=$(mktemp -d)
trap 'rm -rf "$BENCH_TMP"' EXIT

say "building the benchmark (cargo bench --no-run) into $BENCH_TARGET"
(cd "$REPO" && CARGO_TARGET_DIR=$BENCH_TARGET cargo bench -q -p swarmkeeper-compose --bench load --no-run) >&2
start=$(date +%s)
sleep 1 # criterion's files of this run are newer than $start
say "running cargo bench -p swarmkeeper-compose --bench load $*"
(cd "$REPO" && COMPOSE_BENCH_OUT=$BENCH_TMP CARGO_TARGET_DIR=$BENCH_TARGET \
    cargo bench -q -p swarmkeeper-compose --bench load -- "$@") >&2

echo
echo "== compose-load =="
echo "machine: $(machine_line)"
echo "rustc:   $(rustc --version); source: $(source_line)"
python3 "$BENCH_LIB/criterion_report.py" "$BENCH_TARGET/criterion" "$start"

if "$DOCKER" stack config --help 2>/dev/null | grep -q -- '--compose-file'; then
    echo
    echo "$("$DOCKER" version --format '{{.Client.Version}}' 2>/dev/null | sed 's/^/docker CLI /'): docker stack config -c FILE, wall time of 20 runs"
    for services in 50 200; do
        file=$BENCH_TMP/stack-$services.yml
        [[ -f $file ]] || continue
        python3 - "$DOCKER" "$file" "$services" <<'PY'
import statistics, subprocess, sys, time
docker, path, services = sys.argv[1], sys.argv[2], sys.argv[3]
times = []
for _ in range(20):
    t = time.perf_counter()
    subprocess.run([docker, "stack", "config", "-c", path], check=True,
                   stdout=subprocess.DEVNULL, env={"MODE": "staging", "PATH": "/usr/bin:/bin"})
    times.append((time.perf_counter() - t) * 1000)
print(f"  {services:>3} services: median {statistics.median(times):.1f} ms "
      f"(min {min(times):.1f}, max {max(times):.1f})")
PY
    done
else
    say "$DOCKER has no \`stack config -c\`: no docker CLI figures"
fi
