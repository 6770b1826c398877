#!/usr/bin/env bash
# GC planning speed: runs the criterion benchmark crates/gc/benches/plan.rs
# (`cargo bench -p swarmkeeper-gc --bench plan`) and prints its figures: `plan` for nodes of
# 1,000, 10,000 and 100,000 images (one container per tenth image, 100 services with five
# versions each, disk at 95%), the same with ten layers per image (per-layer accounting), the
# layered plans once more timed by the thread's CPU clock (what load from other work on a
# shared machine changes least), `reclaimable_bytes` (the second planner run of each agent
# pass, for the disk-full forecast) by the same clock, and parsing a 10,000-image snapshot JSON. The planner is
# single-threaded, so each figure is the time on one core. Targets: 100,000 images in under
# 50 ms without layers, 100 ms with them.
#
# Usage: bench/gc-plan.sh [CRITERION_ARG...]     e.g. bench/gc-plan.sh plan/100000
# Env:   BENCH_TARGET (target/bench): cargo's target dir, apart from the default one so that
#        it does not fight other builds for the lock.
# Needs: cargo. Takes: about 40 s once built; the first build of the benchmark (release
# profile, criterion) takes a few minutes more.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

need_cmd cargo "install Rust (rustup)"
need_cmd python3 "apt-get install -y python3"

say "building the benchmark (cargo bench --no-run) into $BENCH_TARGET"
(cd "$REPO" && CARGO_TARGET_DIR=$BENCH_TARGET cargo bench -q -p swarmkeeper-gc --bench plan --no-run) >&2
start=$(date +%s)
sleep 1 # criterion's files of this run are newer than $start
say "running cargo bench -p swarmkeeper-gc --bench plan $*"
(cd "$REPO" && CARGO_TARGET_DIR=$BENCH_TARGET cargo bench -q -p swarmkeeper-gc --bench plan -- "$@") >&2

echo
echo "== gc-plan =="
echo "machine: $(machine_line); the planner uses one thread"
echo "rustc:   $(rustc --version); source: $(source_line)"
python3 "$BENCH_LIB/criterion_report.py" "$BENCH_TARGET/criterion" "$start" plan/100000=50 "plan with layers/100000=100" \
    "plan with layers, thread CPU time/100000=100"
