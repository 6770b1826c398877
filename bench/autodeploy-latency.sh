#!/usr/bin/env bash
# Auto-deploy latency on the multi-node lab (issue 12): from the end of a `docker push` to the
# rollout started (the service's spec names the new digest) and to the new version running on
# every node, (1) through the registry's push notifications (`lab/lab.sh --registry-notify`
# to the server's POST /api/hooks/registry, with a registry hook token), (2) through polling
# at the default 1m interval (the notifications then refused: a new hook token), each push at
# a random point of the interval. Swarmpit, the tool users compare with, polls every service
# once a minute with no notification path: its push -> redeploy started is uniform over
# 0-60 s by design (printed for comparison; Swarmpit is not run here).
#
# The lab: a manager and one worker (lab/lab.sh, lab name adl<pid>), its registry with
# htpasswd; `swarmkeeper server` on the host, working through the lab's manager, with the
# registry's password from POST /api/registries. The service: global (2 tasks), following
# REGISTRY/adlat:stable, label swarmkeeper.autodeploy=true only (default interval), its own
# update settings parallelism 0 and monitor 1s; 1 MiB versions (what is timed is
# swarmkeeper, not the pull).
#
# Usage: bench/autodeploy-latency.sh      (as root, after scripts/ensure-engine.sh)
# Env:   PUSHES (5, through notifications), POLL_PUSHES (3, through polling),
#        SWARMKEEPER (default target/bench/release/swarmkeeper, built when missing),
#        BENCH_KEEP (1: keep the temp folder and the server's log)
# Takes: about 1 minute plus 0.5-2 minutes per polled push.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

need_root
need_cmd docker "run scripts/ensure-engine.sh"
need_cmd docker-registry "apt-get install -y docker-registry"
need_cmd htpasswd "apt-get install -y apache2-utils"
need_cmd python3 "apt-get install -y python3"
[[ -x /bin/busybox ]] || die "/bin/busybox is missing: apt-get install -y busybox-static"

SK=$(swarmkeeper_bin)
exec python3 "$BENCH_LIB/autodeploy_latency.py" --swarmkeeper "$SK" \
    --pushes "${PUSHES:-5}" --poll-pushes "${POLL_PUSHES:-3}"
