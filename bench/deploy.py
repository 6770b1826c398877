#!/usr/bin/env python3
"""Stack deploys on the local engine's swarm: `swarmkeeper deploy` against `docker stack deploy`.

For each swarmkeeper binary given (SWARMKEEPER, and BASELINE to compare two builds in the same
conditions), ROUNDS times with the binaries taken in turns, each time on a fresh stack of
SERVICES services of a FROM-scratch busybox image:

- first deploy: wall time until the command returns (swarmkeeper waits until every service has
  converged);
- no-op deploy: the same file again, RUNS times, wall time each (nothing may be written);
- reaction: an update to an image that exits 1 at once, and a new service whose healthcheck
  fails, each rolled back by swarmkeeper; the figure is the one swarmkeeper prints ("rollback
  requested N ms after the engine reported the failure").

Then `docker stack deploy` with the same file: the first deploy (it returns at once, detached),
the time until every task runs, and a second deploy of the unchanged file, RUNS times.

Everything it makes is named skbd<pid>... and labelled skbench=deploy, and removed at the end,
also on failure. Runs as root on a swarm manager (a one-node swarm is fine); needs the docker
CLI and /bin/busybox (busybox-static). Takes about 2 minutes per binary.

The table gives medians over the rounds (no-op deploys: over every run of every round).

Env: SWARMKEEPER (default target/bench/release/swarmkeeper, built when missing), BASELINE
(optional), SERVICES (10), RUNS (10), ROUNDS (3), BENCH_KEEP (1: keep the temp folder).
"""

import os
import re
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from common import busybox_image, ms, remove_stack, run, say, spread, swarmkeeper_bin, timed  # noqa: E402

SERVICES = int(os.environ.get("SERVICES", "10"))
RUNS = int(os.environ.get("RUNS", "10"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
PREFIX = f"skbd{os.getpid() % 100000}"


def build_images(tmp):
    return {
        tag: busybox_image(tmp, f"{PREFIX}:{tag}", cmd, "skbench=deploy")
        for tag, cmd in [
            ("ok", '["/bin/busybox", "sleep", "3600"]'),
            ("bad", '["/bin/busybox", "sh", "-c", "exit 1"]'),
        ]
    }


def service(name, image, extra=""):
    return (
        f"  {name}:\n    image: {image}\n    stop_grace_period: 1s\n"
        f"    deploy:\n      update_config:\n        monitor: 2s\n"
        f"      restart_policy:\n        delay: 1s\n{extra}"
    )


def stack_file(path, services):
    with open(path, "w") as f:
        f.write('version: "3.8"\nservices:\n' + "".join(services))
    return path


def reaction_ms(out):
    found = re.search(r"rollback requested (\d+) ms after", out.stdout)
    if not found:
        raise SystemExit(f"bench: no rollback figure in:\n{out.stdout}\n{out.stderr}")
    return int(found.group(1))


def measure_swarmkeeper(label, binary, images, tmp, index):
    stack = f"{PREFIX}s{index}"
    state = os.path.join(tmp, f"state-{index}")
    env = dict(os.environ, SWARMKEEPER_STATE_DIR=state)
    base = [service(f"s{i}", images["ok"]) for i in range(SERVICES)]
    path = stack_file(os.path.join(tmp, f"stack-{index}.yml"), base)

    def deploy(file):
        return timed([binary, "deploy", "--progress", "plain", "--no-resolve-image", "-c", file, stack], env)

    try:
        say(f"{label}: first deploy of {SERVICES} services")
        first, out = deploy(path)
        if out.returncode != 0:
            raise SystemExit(f"bench: first deploy failed:\n{out.stdout}\n{out.stderr}")
        noops = []
        for _ in range(RUNS):
            took, out = deploy(path)
            if out.returncode != 0 or out.stdout.count(": unchanged") != SERVICES:
                raise SystemExit(f"bench: a no-op deploy changed something:\n{out.stdout}\n{out.stderr}")
            noops.append(took)
        say(f"{label}: an update to an image that exits 1")
        broken = base[:-1] + [service(f"s{SERVICES - 1}", images["bad"])]
        took, out = deploy(stack_file(os.path.join(tmp, f"broken-{index}.yml"), broken))
        if out.returncode != 1:
            raise SystemExit(f"bench: the broken update did not fail:\n{out.stdout}\n{out.stderr}")
        update_reaction = reaction_ms(out)
        say(f"{label}: a new service whose healthcheck fails")
        sick = base + [
            service(
                "sick",
                images["ok"],
                "    healthcheck:\n      test: [\"CMD\", \"/bin/busybox\", \"false\"]\n"
                "      interval: 1s\n      timeout: 1s\n      retries: 1\n",
            )
        ]
        took, out = deploy(stack_file(os.path.join(tmp, f"sick-{index}.yml"), sick))
        if out.returncode != 1:
            raise SystemExit(f"bench: the sick service did not fail:\n{out.stdout}\n{out.stderr}")
        health_reaction = reaction_ms(out)
        return {
            "first": first,
            "noop": noops,
            "update_reaction": update_reaction,
            "health_reaction": health_reaction,
        }
    finally:
        remove_stack(stack)


def all_running(stack):
    out = run(["docker", "stack", "services", stack, "--format", "{{.Replicas}}"], check=False)
    lines = [line for line in out.stdout.split() if line]
    return len(lines) == SERVICES and all(line.split("/")[0] == line.split("/")[1].split(" ")[0] for line in lines)


def measure_docker(images, tmp):
    stack = f"{PREFIX}d"
    base = [service(f"s{i}", images["ok"]) for i in range(SERVICES)]
    path = stack_file(os.path.join(tmp, "docker.yml"), base)
    command = ["docker", "stack", "deploy", "--resolve-image", "never", "-c", path, stack]
    try:
        say("docker stack deploy: first deploy")
        start = time.monotonic()
        first, out = timed(command)
        if out.returncode != 0:
            raise SystemExit(f"bench: docker stack deploy failed:\n{out.stderr}")
        while not all_running(stack):
            if time.monotonic() - start > 120:
                raise SystemExit("bench: docker's stack did not converge in 2 minutes")
            time.sleep(0.1)
        running = time.monotonic() - start
        again = [timed(command)[0] for _ in range(RUNS)]
        return {"first": first, "running": running, "noop": again}
    finally:
        remove_stack(stack)


def main():
    binaries = [("swarmkeeper", swarmkeeper_bin())]
    if os.environ.get("BASELINE"):
        binaries.insert(0, ("baseline", os.environ["BASELINE"]))
    tmp = tempfile.mkdtemp(prefix="skbench-deploy-")
    images = {}
    try:
        images = build_images(tmp)
        rounds = {label: [] for label, _ in binaries}
        for round_ in range(ROUNDS):
            for i, (label, binary) in enumerate(binaries):
                say(f"round {round_ + 1} of {ROUNDS}")
                rounds[label].append(measure_swarmkeeper(label, binary, images, tmp, f"{round_}x{i}"))
        results = {
            label: {
                "first": statistics.median(r["first"] for r in runs),
                "noop": [t for r in runs for t in r["noop"]],
                "update_reaction": statistics.median(r["update_reaction"] for r in runs),
                "health_reaction": statistics.median(r["health_reaction"] for r in runs),
                "update_reactions": [r["update_reaction"] for r in runs],
                "health_reactions": [r["health_reaction"] for r in runs],
            }
            for label, runs in rounds.items()
        }
        docker = measure_docker(images, tmp)
        print(f"{SERVICES} services, {ROUNDS} rounds, {RUNS} no-op runs each round")
        print("| figure | " + " | ".join(label for label, _ in binaries) + " |")
        print("|---|" + "---|" * len(binaries))
        rows = [
            ("first deploy, until every service converged", lambda r: ms(r["first"])),
            ("no-op deploy (median, min, max)", lambda r: spread(r["noop"])),
            ("failure → rollback requested, update to an image that exits 1", lambda r: f"{r['update_reaction']:.0f} ms {r['update_reactions']}"),
            ("failure → rollback requested, new service failing its healthcheck", lambda r: f"{r['health_reaction']:.0f} ms {r['health_reactions']}"),
        ]
        for name, cell in rows:
            print(f"| {name} | " + " | ".join(cell(results[label]) for label, _ in binaries) + " |")
        print()
        print(f"docker stack deploy: first deploy returns after {ms(docker['first'])} (detached), "
              f"every task running after {ms(docker['running'])}; again with the same file: "
              f"{spread(docker['noop'])}, every spec written again")
    finally:
        for image in images.values():
            run(["docker", "rmi", image], check=False)
        if os.environ.get("BENCH_KEEP") == "1":
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
