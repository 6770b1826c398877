#!/usr/bin/env bash
# The project's one test command. It gives this machine what the tests need (a Docker
# Engine on /var/run/docker.sock that is a single-node Swarm manager, busybox-static,
# iproute2: scripts/ensure-engine.sh installs and starts what is missing, as root), then
# runs every test of the workspace, then the dashboard's browser test
# (scripts/browser-test.sh; not when packages are picked). Extra arguments go to `cargo test`, e.g.
#   scripts/test.sh -p swarmkeeper-gc
#   scripts/test.sh -- --nocapture
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
section "cargo test ${scope[*]} $*"
t=$SECONDS
status=0
cargo test "${scope[@]}" "$@" || status=$?
echo "cargo test finished in $((SECONDS - t)) s (exit $status)"

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
