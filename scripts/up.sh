#!/usr/bin/env bash
# Brings up a local single-node swarm (installing and starting Docker if needed) and runs
# swarmkeeper on it the way it runs in production: the agent as a global service from
# deploy/swarmkeeper.yml, in its `FROM scratch` image. Idempotent: run it again after a change
# and the service is updated (with rollback on failure). Run as root. `scripts/down.sh` removes
# the stack; the swarm stays.
#
# Environment: every SWARMKEEPER_… setting of deploy/swarmkeeper.yml (README, "Policy").
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

say() { echo "up: $*" >&2; }

bash scripts/ensure-engine.sh
command -v cargo >/dev/null || { say "error: cargo (Rust 1.89 or newer) is needed to build swarmkeeper"; exit 1; }

say "building the swarmkeeper image (static binary, FROM scratch)"
image=$(bash packaging/build-image.sh | tail -n 1)
# A local image has no registry digest: tag it by content, so that a rebuild is a new version
# for the service and an unchanged one is not.
id=$(docker image inspect --format '{{.Id}}' "$image")
local_tag="swarmkeeper:local-${id#sha256:}"
local_tag=${local_tag:0:30}
docker tag "$image" "$local_tag"

say "deploying the stack (deploy/swarmkeeper.yml) with $local_tag"
SWARMKEEPER_IMAGE=$local_tag docker stack deploy --resolve-image never -c deploy/swarmkeeper.yml swarmkeeper

say "waiting for the agent to answer on 127.0.0.1:9465"
bin=target/static/x86_64-unknown-linux-gnu/release/swarmkeeper
for _ in $(seq 100); do
    "$bin" healthcheck --listen 127.0.0.1:9465 >/dev/null 2>&1 && break
    sleep 0.3
done
"$bin" healthcheck --listen 127.0.0.1:9465 >/dev/null || {
    docker service ps --no-trunc swarmkeeper_agent >&2
    say "error: the agent does not answer"
    exit 1
}

echo
docker service ls --filter label=com.docker.stack.namespace=swarmkeeper
echo
"$bin" disk
echo
"$bin" gc plan | head -n 20
cat <<TXT

swarmkeeper's agent runs on every node of this swarm (service swarmkeeper_agent).
  metrics:   curl http://127.0.0.1:9465/metrics
  logs:      $bin logs swarmkeeper_agent
  disk:      $bin disk
  plan:      $bin gc plan
  lint:      $bin lint -c deploy/swarmkeeper.yml
  remove:    scripts/down.sh
TXT
