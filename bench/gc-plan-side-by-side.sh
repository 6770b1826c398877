#!/usr/bin/env bash
# Two or more builds of the GC planning benchmark (crates/gc/benches/plan.rs) side by side:
# each binary runs in turn, in the order given (give "before after after before" to
# alternate), `plan with layers` at 100,000 images, and one line per run prints criterion's
# wall and thread-CPU interval with the 1-minute load average at its start. On a shared
# machine only runs taken in the same invocation compare.
#
# Usage: bench/gc-plan-side-by-side.sh BENCH_BINARY...
#        a binary is what `cargo bench -p swarmkeeper-gc --bench plan --no-run` prints
#        (target/bench/release/deps/plan-…), copied aside before the next build.
# Needs: the binaries. Takes: about 40 s a run.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

[[ $# -gt 0 ]] || die "usage: $0 BENCH_BINARY..."
for bin in "$@"; do
    [[ -x $bin ]] || die "$bin is not an executable benchmark binary"
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" # criterion keeps its files under ./target/criterion
echo "time      load   wall (criterion: low, median, high)         thread CPU                  binary"
for bin in "$@"; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    out=$("$bin" --bench "plan with layers.*/100000" --warm-up-time 2 --measurement-time 8 \
        --noplot 2>&1)
    wall=$(grep -o "^plan with layers/100000 *time: *\[[^]]*\]" <<<"$out" | grep -o "\[.*\]")
    cpu=$(grep -A1 "thread CPU time/100000" <<<"$out" | grep -o "time: *\[[^]]*\]" |
        grep -o "\[.*\]")
    printf '%s %6s %-44s %-27s %s\n' "$(date -u +%H:%M:%S)" "$load" "$wall" "$cpu" "$bin"
done
