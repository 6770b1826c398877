#!/usr/bin/env bash
# Brings up a local single-node swarm (installing and starting Docker if needed) and runs the
# swarmkeeper agent on it as a host daemon. Idempotent: run it again after a rebuild and the
# agent is restarted with the new binary. Run as root. `scripts/down.sh` stops the agent.
#
# Environment:
#   SWARMKEEPER_LISTEN     where the agent serves /metrics and /healthz (default 127.0.0.1:9465)
#   SWARMKEEPER_STATE_DIR  the agent's state (default /var/lib/swarmkeeper)
#   other SWARMKEEPER_…    policy settings, passed to the agent as they are (see README)
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

export SWARMKEEPER_LISTEN=${SWARMKEEPER_LISTEN:-127.0.0.1:9465}
export SWARMKEEPER_STATE_DIR=${SWARMKEEPER_STATE_DIR:-/var/lib/swarmkeeper}
PIDFILE=/run/swarmkeeper-agent.pid
LOG=/var/log/swarmkeeper-agent.log
BIN=target/release/swarmkeeper

say() { echo "up: $*" >&2; }

bash scripts/ensure-engine.sh
command -v curl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
command -v cargo >/dev/null || { say "error: cargo (Rust 1.89 or newer) is needed to build swarmkeeper"; exit 1; }
say "building swarmkeeper (release)"
cargo build --release --quiet -p swarmkeeper-cli

bash scripts/down.sh
say "starting the agent on $SWARMKEEPER_LISTEN (log: $LOG)"
setsid "$BIN" agent </dev/null >>"$LOG" 2>&1 &
echo $! >"$PIDFILE"
for _ in $(seq 50); do
    if curl -fsS "http://$SWARMKEEPER_LISTEN/healthz" >/dev/null 2>&1; then
        break
    fi
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { tail -n 20 "$LOG" >&2; say "error: the agent exited"; exit 1; }
    sleep 0.1
done

echo
docker node ls
echo
"$BIN" disk
echo
"$BIN" gc plan --state-dir "$SWARMKEEPER_STATE_DIR" | head -n 20
cat <<TXT

swarmkeeper agent is running (pid $(cat "$PIDFILE")): GC on every pull and every 30 s.
  metrics:   curl http://$SWARMKEEPER_LISTEN/metrics
  disk:      $BIN disk
  plan:      $BIN gc plan
  log:       tail -f $LOG
  stop:      scripts/down.sh
TXT
