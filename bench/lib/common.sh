# shellcheck shell=bash
# Shared by the bench/*.sh scripts: sourced, not run.
#
# Environment a user may set:
#   SWARMKEEPER   the swarmkeeper binary (default: target/bench/release/swarmkeeper, built
#                 with `cargo build --release` into target/bench when missing)
#   DOCUUM        the docuum binary (default: `docuum` on PATH, else /tmp/docuum-bin/bin/docuum)
#   BENCH_KEEP    1: keep temporary folders (for a post-mortem)

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB=$REPO/lab/small-engine.sh
BENCH_LIB=$REPO/bench/lib
BENCH_TARGET=${BENCH_TARGET:-$REPO/target/bench}

say() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }

need_root() { [[ $(id -u) -eq 0 ]] || die "run this as root (it starts throwaway Docker daemons)"; }

need_cmd() { # need_cmd CMD HINT
    command -v "$1" >/dev/null 2>&1 || die "$1 is missing: $2"
}

# The swarmkeeper release binary, built into target/bench when missing.
swarmkeeper_bin() {
    local bin=${SWARMKEEPER:-$BENCH_TARGET/release/swarmkeeper}
    if [[ ! -x $bin ]]; then
        [[ -z ${SWARMKEEPER:-} ]] || die "SWARMKEEPER=$SWARMKEEPER is not an executable"
        say "building swarmkeeper (release) into $BENCH_TARGET; the first build takes minutes"
        (cd "$REPO" && CARGO_TARGET_DIR=$BENCH_TARGET cargo build --release -q -p swarmkeeper-cli) >&2 ||
            die "cargo build failed"
    fi
    echo "$bin"
}

docuum_bin() {
    local bin
    if [[ -n ${DOCUUM:-} ]]; then
        [[ -x $DOCUUM ]] || die "DOCUUM=$DOCUUM is not an executable"
        echo "$DOCUUM"
        return
    fi
    if bin=$(command -v docuum 2>/dev/null); then
        echo "$bin"
    elif [[ -x /tmp/docuum-bin/bin/docuum ]]; then
        echo /tmp/docuum-bin/bin/docuum
    else
        die "docuum not found: install it with \`cargo install docuum --root /tmp/docuum-bin\`, or set DOCUUM=/path/to/docuum (a benchmark peer only)"
    fi
}

# Labs started through lab_up, tools whose pid files are in BENCH_TMP, and BENCH_TMP itself
# are taken care of by cleanup (install it with `trap cleanup EXIT`).
BENCH_LABS=()
BENCH_TMP=

# Sets LAB_HOST to the lab's unix://... socket. Not in a $(...) subshell: it records the
# name for cleanup.
lab_up() { # lab_up NAME SIZE
    local host
    [[ " ${BENCH_LABS[*]} " == *" $1 "* ]] || BENCH_LABS+=("$1")
    host=$("$LAB" up "$1" "$2" 2>/dev/null | tail -n 1) || die "lab up $1 $2 failed (see lab/README.md)"
    [[ $host == unix://* ]] || die "lab up $1 printed no socket"
    # shellcheck disable=SC2034 # read by the scripts
    LAB_HOST=$host
}

lab_down() { # lab_down NAME...
    "$LAB" down "$@" >/dev/null 2>&1 || say "lab down $* failed"
}

# Sets BENCH_TMP to a temp folder that cleanup removes. Not in a $(...) subshell.
bench_tmp() {
    if [[ -z $BENCH_TMP ]]; then
        BENCH_TMP=$(mktemp -d /tmp/swarmkeeper-bench.XXXXXX)
    fi
}

cleanup() {
    local rc=$? f pid
    # Tools the python helpers started (each the leader of its own process group) and that
    # outlived them: an interrupted run.
    if [[ -n $BENCH_TMP ]]; then
        for f in "$BENCH_TMP"/*.pid "$BENCH_TMP"/*/*.pid; do
            [[ -f $f ]] || continue
            pid=$(cat "$f")
            [[ $pid =~ ^[0-9]+$ ]] && kill -TERM -- "-$pid" 2>/dev/null || true
        done
    fi
    if ((${#BENCH_LABS[@]})); then
        lab_down "${BENCH_LABS[@]}"
    fi
    if [[ -n $BENCH_TMP && ${BENCH_KEEP:-0} != 1 ]]; then
        rm -rf "$BENCH_TMP"
    fi
    exit "$rc"
}

# Loads COUNT generated images into the engine at HOST: load_images HOST MKIMAGES_ARG...
load_images() {
    local host=$1
    shift
    python3 "$BENCH_LIB/mkimages.py" "$@" | DOCKER_HOST=$host docker load -q >/dev/null ||
        die "docker load of generated images failed"
}

engine_version() { # engine_version HOST
    DOCKER_HOST=$1 docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})'
}

machine_line() {
    local cpu
    cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
    echo "$(nproc) cores (${cpu:-unknown CPU}), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
}

# The commit of the checkout the benchmarks run from, "+dirty" when its tracked files differ.
source_line() {
    local rev dirty=
    rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null) || { echo "not a git checkout"; return; }
    git -C "$REPO" diff --quiet HEAD -- 2>/dev/null || dirty=+dirty
    echo "checkout $rev$dirty"
}
