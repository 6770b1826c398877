#!/usr/bin/env bash
# Brings up a local single-node swarm (installing and starting Docker if needed) and runs
# swarmkeeper on it the way it runs in production: the agent as a global service and the
# server (dashboard) on the manager, from deploy/swarmkeeper.yml, in its `FROM scratch` image. Idempotent: run it again after a change
# and the service is updated (with rollback on failure). Run as root. `scripts/down.sh` removes
# the stack; the swarm stays.
#
# Environment: every SWARMKEEPER_… setting of deploy/swarmkeeper.yml (README, "Policy");
# SWARMKEEPER_ADMIN_PASSWORD (12 characters or more) creates the dashboard's first admin,
# otherwise the server's one-time setup token is printed.
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

if ! docker secret inspect swarmkeeper_report_secret >/dev/null 2>&1; then
    say "creating the secret agents report to the server with (swarmkeeper_report_secret)"
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | docker secret create swarmkeeper_report_secret - >/dev/null
fi
if ! docker secret inspect swarmkeeper_secret_key >/dev/null 2>&1; then
    say "creating the key the server seals alert-channel and registry credentials with (swarmkeeper_secret_key)"
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | docker secret create swarmkeeper_secret_key - >/dev/null
fi

# The server keeps its SQLite file on the manager labelled swarmkeeper.state=true: this node,
# unless one is labelled already.
if [ -z "$(docker node ls -q --filter node.label=swarmkeeper.state=true)" ]; then
    say "labelling this node swarmkeeper.state=true (where the server keeps its state)"
    docker node update --label-add swarmkeeper.state=true "$(docker info --format '{{.Swarm.NodeID}}')" >/dev/null
fi

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

say "waiting for the server to answer on 127.0.0.1:8080"
for _ in $(seq 100); do
    "$bin" healthcheck --listen 127.0.0.1:8080 >/dev/null 2>&1 && break
    sleep 0.3
done
"$bin" healthcheck --listen 127.0.0.1:8080 >/dev/null || {
    docker service ps --no-trunc swarmkeeper_server >&2
    say "error: the server does not answer"
    exit 1
}
login="log in as admin with SWARMKEEPER_ADMIN_PASSWORD"
if [ -z "${SWARMKEEPER_ADMIN_PASSWORD:-}" ]; then
    token=$(docker service logs --raw swarmkeeper_server 2>&1 | grep -o 'skst_[0-9a-f]*' | tail -n 1 || true)
    if [ -n "$token" ]; then
        login="open http://localhost:8080/setup and enter the setup token $token"
    else
        login="log in with the admin you created earlier"
    fi
fi

echo
docker service ls --filter label=com.docker.stack.namespace=swarmkeeper
echo
"$bin" disk
echo
"$bin" gc plan | head -n 20
cat <<TXT

swarmkeeper's agent runs on every node of this swarm (service swarmkeeper_agent), and its
dashboard on the manager (service swarmkeeper_server).
  dashboard: http://localhost:8080 ($login)
  metrics:   curl http://127.0.0.1:9465/metrics
  logs:      $bin logs swarmkeeper_agent
  disk:      $bin disk
  plan:      $bin gc plan
  lint:      $bin lint -c deploy/swarmkeeper.yml
  remove:    scripts/down.sh
TXT
