#!/usr/bin/env python3
"""The deploy history kept in the swarm: no-op deploys of a SERVICES-service stack while its
history grows to (and stays at) KEEP revisions, and reading that history.

On the host's swarm, one stack of SERVICES services of a FROM-scratch busybox image:

- first deploy, until every service converged;
- no-op deploys until the history holds KEEP revisions (each appends one: a start and an end
  config object, the end holding every service's spec), timed, then RUNS more with the history
  full (each also forgets the oldest revision);
- `swarmkeeper history STACK` and `history STACK --json` with KEEP revisions, RUNS times each;
- what the history takes in the swarm: config objects, their data bytes (gzip JSON), and the
  bytes of the one `GET /configs` answer a listing reads;
- beside them, `docker stack deploy` of the same file again, RUNS times (it keeps no history,
  and writes every service's spec again).

Everything it makes is named skbh<pid>... and removed at the end, also on failure. Runs as
root on a swarm manager (a one-node swarm is fine); needs the docker CLI and /bin/busybox
(busybox-static). Takes about 3 minutes.

Env: SWARMKEEPER (default target/bench/release/swarmkeeper, built when missing), SERVICES (50),
KEEP (50), RUNS (10), BENCH_KEEP (1: keep the temp folder).
"""

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from common import busybox_image, ms, remove_stack, run, say, spread, swarmkeeper_bin, timed  # noqa: E402
from engine import Engine  # noqa: E402  (a small Engine API client)

SERVICES = int(os.environ.get("SERVICES", "50"))
KEEP = int(os.environ.get("KEEP", "50"))
RUNS = int(os.environ.get("RUNS", "10"))
PREFIX = f"skbh{os.getpid() % 100000}"


def stack_file(path, image):
    services = "".join(
        f"  s{i}:\n    image: {image}\n    stop_grace_period: 1s\n"
        f"    environment:\n      INDEX: \"{i}\"\n"
        f"    deploy:\n      update_config:\n        monitor: 2s\n"
        for i in range(SERVICES)
    )
    with open(path, "w") as f:
        f.write('version: "3.8"\nservices:\n' + services)
    return path


def history_objects(stack):
    filters = json.dumps({"label": [f"swarmkeeper.revision.stack={stack}"]})
    path = "/configs?filters=" + urllib.parse.quote(filters)
    client = Engine()
    started = time.monotonic()
    raw = client.request("GET", path, raw=True)
    took = time.monotonic() - started
    client.close()
    return json.loads(raw), len(raw), took


def main():
    binary = swarmkeeper_bin()
    tmp = tempfile.mkdtemp(prefix="skbench-history-")
    stack = f"{PREFIX}s"
    image = None
    # An empty state dir: nothing local to import.
    env = dict(os.environ, SWARMKEEPER_STATE_DIR=os.path.join(tmp, "state"))
    try:
        image = busybox_image(tmp, f"{PREFIX}:ok", '["/bin/busybox", "sleep", "3600"]', "skbench=history")
        path = stack_file(os.path.join(tmp, "stack.yml"), image)
        deploy = [binary, "deploy", "--progress", "plain", "--no-resolve-image",
                  "--keep-revisions", str(KEEP), "-c", path, stack]
        say(f"first deploy of {SERVICES} services")
        first, _ = timed(deploy, env, check=True)
        growing = []
        say(f"no-op deploys until the history holds {KEEP} revisions")
        for _ in range(KEEP - 1):
            took, out = timed(deploy, env, check=True)
            if out.stdout.count(": unchanged") != SERVICES:
                raise SystemExit(f"bench: a no-op deploy changed something:\n{out.stdout}")
            growing.append(took)
        full = []
        say(f"{RUNS} no-op deploys with the history full (each forgets the oldest revision)")
        for _ in range(RUNS):
            full.append(timed(deploy, env, check=True)[0])
        table = [timed([binary, "history", stack], env, check=True)[0] for _ in range(RUNS)]
        as_json = []
        for _ in range(RUNS):
            took, out = timed([binary, "history", stack, "--json"], env, check=True)
            as_json.append(took)
            revisions = json.loads(out.stdout)["revisions"]
        if len(revisions) != KEEP:
            raise SystemExit(f"bench: {len(revisions)} revisions listed, {KEEP} expected")
        objects, answer_bytes, answer_took = history_objects(stack)
        data = [len(o["Spec"].get("Data") or "") * 3 // 4 for o in objects]
        ends = [len(o["Spec"].get("Data") or "") * 3 // 4 for o in objects
                if o["Spec"]["Labels"].get("swarmkeeper.revision.record") == "end"]
        say("docker stack deploy of the same file again")
        docker = [timed(["docker", "stack", "deploy", "--resolve-image", "never", "-c", path, stack], check=True)[0]
                  for _ in range(RUNS)]

        print(f"{SERVICES} services, history kept at {KEEP} revisions, {RUNS} runs")
        print("| figure | measured |")
        print("|---|---|")
        print(f"| first deploy, until every service converged | {ms(first)} |")
        print(f"| no-op deploy while the history grows to {KEEP} | {spread(growing)} |")
        print(f"| no-op deploy with {KEEP} revisions kept (appends one, forgets one) | {spread(full)} |")
        print(f"| `history` (table), {KEEP} revisions | {spread(table)} |")
        print(f"| `history --json`, {KEEP} revisions | {spread(as_json)} |")
        print(f"| `docker stack deploy` of the same file again (no history; every spec written) | {spread(docker)} |")
        print()
        print(f"in the swarm: {len(objects)} config objects, {sum(data) / 1024:.0f} KiB of data "
              f"(an end record of {SERVICES} specs: {statistics.median(ends) / 1024:.1f} KiB gzip); "
              f"the GET /configs a listing reads: {answer_bytes / 1024:.0f} KiB in {ms(answer_took)}")
    finally:
        remove_stack(stack)
        if image:
            run(["docker", "rmi", image], check=False)
        if os.environ.get("BENCH_KEEP") == "1":
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
