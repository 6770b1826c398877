#!/usr/bin/env bash
# Removes the swarmkeeper stack that scripts/up.sh deployed. The swarm, the engine and the
# agent's state volume stay.
set -euo pipefail
docker stack rm swarmkeeper
