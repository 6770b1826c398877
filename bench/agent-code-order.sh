#!/usr/bin/env bash
# Writes crates/cli/agent-code-order.txt: the functions an agent runs, which release builds
# link first and together (crates/cli/build.rs, lld's --symbol-ordering-file).
#
# Runs bench/agent-event-burst.sh (NODE=layers: 1,000 images of ten layers, 100 containers;
# one burst of 10,000 events; statistics on; reports posted to a receiver, as with --server)
# with the static release binary run directly, where its code is registered with a
# userfaultfd (Linux >= 6.7, no seccomp profile): then a code page is resident only if the
# agent ran it. At the end the resident code pages (/proc/PID/pagemap) are mapped to the
# functions on them (bench/lib/code_order.py; nm on the unstripped binary), sorted by name.
#
# Usage: bench/agent-code-order.sh [BINARY [BINARY2]]   (as root, after scripts/ensure-engine.sh)
#   BINARY: the unstripped static release binary (default: packaging/build-image.sh's,
#   target/static/x86_64-unknown-linux-gnu/release/swarmkeeper). With BINARY2 (another
#   build, e.g. one linked with BINARY's list), each is profiled and the list holds the
#   functions of both runs: one run does not take every path.
# Env:   OUT (default crates/cli/agent-code-order.txt), BENCH_LAB (skbcodeorder)
# Takes: about 3 minutes per binary.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

need_root
OUT=${OUT:-$REPO/crates/cli/agent-code-order.txt}
bins=("${@:-$REPO/target/static/x86_64-unknown-linux-gnu/release/swarmkeeper}")
tmp=$(mktemp -d /tmp/agent-code-order.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
args=()
for i in "${!bins[@]}"; do
    bin=${bins[$i]}
    [[ -x $bin ]] || die "$bin is not an executable"
    nm "$bin" >/dev/null 2>&1 || die "$bin has no symbol table (give the binary before strip)"
    # A copy of its own: the profile must not follow a rebuild of the same path.
    cp "$bin" "$tmp/bin$i"
    say "profiling $bin"
    NODE=layers BURSTS=1 BASELINE=0 REPORT=1 CODE_PAGES="$tmp/pages$i" SWARMKEEPER="$tmp/bin$i" \
        BENCH_LAB=${BENCH_LAB:-skbcodeorder} "$REPO/bench/agent-event-burst.sh" >"$tmp/burst$i" ||
        die "the agent's run failed"
    [[ -s $tmp/pages$i ]] || die "no resident code pages recorded"
    args+=(--binary "$tmp/bin$i" --pages "$tmp/pages$i")
done
python3 "$BENCH_LIB/code_order.py" "${args[@]}" >"$tmp/order"
mv "$tmp/order" "$OUT"
say "wrote $OUT ($(wc -l <"$OUT") functions)"
