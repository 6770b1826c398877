#!/usr/bin/env bash
# Stops the agent that scripts/up.sh started. The swarm and the engine keep running.
set -euo pipefail
PIDFILE=/run/swarmkeeper-agent.pid
[[ -f $PIDFILE ]] || exit 0
pid=$(cat "$PIDFILE")
if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == swarmkeeper ]]; then
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "down: stopped the agent (pid $pid)" >&2
fi
rm -f "$PIDFILE"
