#!/usr/bin/env bash
# The project's one test command. It gives this machine what the tests need (a Docker
# Engine on /var/run/docker.sock that is a single-node Swarm manager, busybox-static,
# iproute2: scripts/ensure-engine.sh installs and starts what is missing, as root), then
# runs every test of the workspace, then the dashboard's browser test
# (scripts/browser-test.sh; not when packages are picked). Extra arguments go to `cargo test`, e.g.
#   scripts/test.sh -p swarmkeeper-gc
#   scripts/test.sh -- --nocapture
#
# The whole workspace runs in two lanes at once, built first (`cargo test --no-run`): the
# test binaries that bring up a Swarm lab of their own (lab/lab.sh: `SwarmLab::` in
# crates/cli/tests/*.rs) in the background, everything else in the foreground. Lab tests
# spend their time waiting on their own daemons (a pace between pushes, release timers,
# rollouts), not on the CPU, and touch neither the host engine nor its swarm. A host-engine
# test that mostly waits on Swarm (restarts, rollbacks) and names everything it makes uniquely
# joins them with a line `// test lane: waiting` (its reason after it). The lab lane's
# output is printed whole after the other lane's; either lane failing fails the command. Each
# lane runs on past a failing binary (--no-fail-fast), so a failure in one lane does not hide
# the results of the rest of it.
# SWARMKEEPER_TEST_LANES=1 runs one `cargo test` instead, as does any argument before `--`.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

section() { printf '\n=== %s ===\n' "$*"; }

section "engine (scripts/ensure-engine.sh)"
t=$SECONDS
bash scripts/ensure-engine.sh
if [[ -n ${DOCKER_HOST:-} && $DOCKER_HOST != unix:///var/run/docker.sock ]]; then
    echo "note: DOCKER_HOST=$DOCKER_HOST, so tests that use the default engine talk to it" >&2
fi
echo "engine ready in $((SECONDS - t)) s"

# The whole workspace, unless the arguments pick packages (-p NAME) before any `--`.
scope=(--workspace)
for a in "$@"; do
    case $a in
    --) break ;;
    -p | --package | -p?* | --package=*) scope=() ;;
    esac
done
# Two lanes only for the whole workspace with no cargo argument (test-harness arguments after
# `--` are fine: both lanes get them).
lanes=${SWARMKEEPER_TEST_LANES:-2}
if [[ ${#scope[@]} -gt 0 && ${1:-} != "" && $1 != -- ]]; then lanes=1; fi
# Both lanes select the whole workspace (so cargo resolves the same features and reuses the
# one build) and split it by integration test target (crates/*/tests/*.rs).
lab_tests=() other_tests=() lab_names=() other_names=" "
for f in crates/*/tests/*.rs; do
    n=$(basename "$f" .rs)
    if { [[ $f == crates/cli/tests/* ]] && grep -q 'SwarmLab::' "$f"; } ||
        grep -q '^// test lane: waiting' "$f"; then
        lab_tests+=(--test "$n") lab_names+=("$n")
    elif [[ $other_names != *" $n "* ]]; then
        other_tests+=(--test "$n") other_names+="$n "
    fi
done
# A lab test's name also used by another crate's test would run in both lanes.
for n in "${lab_names[@]}"; do
    if [[ $other_names == *" $n "* ]]; then lanes=1; fi
done
if [[ ${#scope[@]} -eq 0 || ${#lab_tests[@]} -eq 0 ]]; then lanes=1; fi

status=0
if ((lanes == 1)); then
    section "cargo test ${scope[*]} $*"
    t=$SECONDS
    cargo test "${scope[@]}" "$@" || status=$?
    echo "cargo test finished in $((SECONDS - t)) s (exit $status)"
else
    section "cargo test --workspace $* (two lanes: Swarm lab tests alongside the rest)"
    t=$SECONDS
    cargo test --workspace --no-run || status=$?
    if ((status == 0)); then
        lab_log=$(mktemp /tmp/swarmkeeper-test-lab-lane.XXXXXX)
        # Its own session: an interrupted run stops the whole lane (cargo, the test binary).
        setsid cargo test --workspace --no-fail-fast "${lab_tests[@]}" "$@" >"$lab_log" 2>&1 &
        lab_pid=$!
        trap 'kill -TERM -- -$lab_pid 2>/dev/null || true; rm -f "$lab_log"' EXIT
        trap 'exit 130' INT TERM
        echo "lab lane started in the background (${lab_names[*]}); its output follows the other lane's"
        # Unit tests and every other integration test, then the doc tests (a run of its own
        # in cargo: `--doc` takes no other target).
        other_status=0 doc_status=0
        cargo test --workspace --no-fail-fast --lib --bins "${other_tests[@]}" "$@" || other_status=$?
        cargo test --workspace --doc "$@" || doc_status=$?
        if ((other_status == 0)); then other_status=$doc_status; fi
        echo "other lane finished in $((SECONDS - t)) s (exit $other_status)"
        lab_status=0
        wait "$lab_pid" || lab_status=$?
        trap - EXIT INT TERM
        section "cargo test: the lab lane (ran alongside the above)"
        cat "$lab_log"
        rm -f "$lab_log"
        echo "lab lane finished in $((SECONDS - t)) s (exit $lab_status)"
        status=$other_status
        if ((status == 0)); then status=$lab_status; fi
    fi
    echo "cargo test finished in $((SECONDS - t)) s (exit $status)"
fi

# The dashboard in a real browser (Debian's chromium driven by Playwright), when the whole
# workspace was asked for; SWARMKEEPER_BROWSER_TEST=0 skips it.
if [[ ${#scope[@]} -gt 0 && ${SWARMKEEPER_BROWSER_TEST:-1} != 0 ]]; then
    section "browser test (scripts/browser-test.sh)"
    t=$SECONDS
    browser_status=0
    bash scripts/browser-test.sh || browser_status=$?
    echo "browser test finished in $((SECONDS - t)) s (exit $browser_status)"
    if ((status == 0)); then status=$browser_status; fi
fi

# Tests start lab engines (lab/small-engine.sh) and must stop them; say so if one did not.
if [[ -d /run/swarmkeeper-lab ]]; then
    left=$(bash lab/small-engine.sh list 2>/dev/null || true)
    if [[ -n $left ]]; then
        echo "warning: lab engines still up after the tests: $(echo "$left" | tr '\n' ' ')" >&2
        echo "         (lab/small-engine.sh down NAME removes one)" >&2
    fi
fi
exit "$status"
