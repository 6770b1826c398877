#!/usr/bin/env bash
# The dashboard's browser tests: tests/browser/test_dashboard.py (and test_objects.py, on a
# lab swarm of its own) drive Debian's chromium with
# Playwright (from PyPI, without a downloaded browser) against `swarmkeeper server` and a
# service on this machine's swarm. Installs what is missing first, as root: the engine and
# chromium (scripts/ensure-engine.sh), the Python packages of tests/browser/requirements.txt;
# then builds the binary (a no-op when it is up to date) and runs the test.
#
# Screenshots of every page, the server's log and the log lines seen end up in
# target/browser-screenshots/. scripts/test.sh runs this after `cargo test`.
#
# Environment:
#   PYTHON                 the Python to use (default python3)
#   SWARMKEEPER_CHROMIUM   a chromium binary to use instead of Debian's
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

export DEBIAN_FRONTEND=noninteractive
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
PYTHON=${PYTHON:-python3}
REQUIREMENTS=tests/browser/requirements.txt

say() { echo "browser-test.sh: $*" >&2; }

# The engine, and chromium when /usr/bin/chromium is absent (same apt run, same safeguards).
if [[ -z ${SWARMKEEPER_CHROMIUM:-} && ! -x /usr/bin/chromium ]]; then
    say "installing chromium (Debian's package)"
    SWARMKEEPER_EXTRA_PACKAGES="${SWARMKEEPER_EXTRA_PACKAGES:-} chromium" bash scripts/ensure-engine.sh
else
    bash scripts/ensure-engine.sh
fi

# Playwright at the pinned version; never its browser download (`playwright install`).
pinned=$(sed -n 's/^playwright==//p' "$REQUIREMENTS")
have=$("$PYTHON" -c 'import importlib.metadata as m, playwright; print(m.version("playwright"))' 2>/dev/null || true)
if [[ $have != "$pinned" ]]; then
    say "pip install -r $REQUIREMENTS (playwright ${have:-missing}, want $pinned)"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        -r "$REQUIREMENTS"
fi

cargo build --quiet -p swarmkeeper-cli

status=0
"$PYTHON" tests/browser/test_dashboard.py || status=1
# Editing a service in a form and as compose, rolled back when broken; a viewer refused.
"$PYTHON" tests/browser/test_services.py || status=1
# Secrets, drain and a viewer's refusals, on a lab swarm of its own (lab/lab.sh, root).
"$PYTHON" tests/browser/test_objects.py || status=1
exit $status
