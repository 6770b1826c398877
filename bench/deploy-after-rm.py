#!/usr/bin/env python3
"""A redeploy right after `docker service rm` of a stack's last service: how long
`swarmkeeper deploy` waits before it creates the service again.

The stack's network stays (only `docker stack rm` and `docker network rm` remove networks), but
the removed service's task still stops on it. Each round, for each binary in turns (SWARMKEEPER,
and BASELINE to compare two builds in the same conditions): deploy a one-service stack, wait
until its task runs, `docker service rm` the service, and time the deploy of the same file
right away (wall time until it returns, converged). Three cases: a task that exits on SIGTERM
(`trap`); one that ignores it (busybox `sleep` as PID 1: Swarm kills it after the default 10 s
`stop_grace_period`); and the first again while an unrelated service, removed at the same
moment, takes 20 s to stop (a shared engine: other stacks' tasks stopping elsewhere).

Everything is named skbr<pid>... and removed at the end, also on failure. Runs as root on a
swarm manager; needs the docker CLI and /bin/busybox.

Env: SWARMKEEPER (default target/bench/release/swarmkeeper), BASELINE (optional), ROUNDS (3).
"""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from common import busybox_image, remove_stack, run, say, swarmkeeper_bin, timed  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "3"))
PREFIX = f"skbr{os.getpid() % 100000}"
EXITS = '["/bin/busybox", "sh", "-c", "trap \'exit 0\' TERM; while true; do /bin/busybox sleep 1; done"]'
IGNORES = '["/bin/busybox", "sleep", "3600"]'
# case: (the stack's task, whether an unrelated service stops meanwhile)
KINDS = {
    "exits on SIGTERM": (EXITS, False),
    "ignores SIGTERM (10 s grace)": (IGNORES, False),
    "exits on SIGTERM + another service stopping": (EXITS, True),
}
SCENARIOS = [k for k in KINDS if k in os.environ.get("CASES", ",".join(KINDS)).split(",")]


def main():
    binaries = [("swarmkeeper", swarmkeeper_bin())]
    if os.environ.get("BASELINE"):
        binaries.insert(0, ("baseline", os.environ["BASELINE"]))
    stacks = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            built = {
                cmd: busybox_image(tmp, f"{PREFIX}:k{i}", cmd, "skbench=deploy-after-rm")
                for i, cmd in enumerate([EXITS, IGNORES])
            }
            results = {(kind, name): [] for kind in SCENARIOS for name, _ in binaries}
            for round_ in range(ROUNDS):
                for kind in SCENARIOS:
                    image, other = built[KINDS[kind][0]], KINDS[kind][1]
                    for name, binary in binaries:
                        stack = f"{PREFIX}r{round_}{list(KINDS).index(kind)}{name[0]}"
                        stacks.append(stack)
                        path = os.path.join(tmp, f"{stack}.yml")
                        with open(path, "w") as f:
                            f.write(f"services:\n  web:\n    image: {image}\n")
                        deploy = [binary, "deploy", "--progress", "plain", "--no-resolve-image", "-c", path, stack]
                        run(deploy)
                        removed = [f"{stack}_web"]
                        if other:
                            removed.append(f"{stack}-other")
                            run(["docker", "service", "create", "-d", "--name", removed[1],
                                 "--stop-grace-period", "20s", built[IGNORES]])
                            while "Running" not in run(["docker", "service", "ps", "--format",
                                                        "{{.CurrentState}}", removed[1]]).stdout:
                                time.sleep(0.2)
                        run(["docker", "service", "rm", *removed])
                        took, out = timed(deploy)
                        if out.returncode != 0:
                            raise SystemExit(f"bench: {name} redeploy failed:\n{out.stdout}\n{out.stderr}")
                        results[(kind, name)].append(took)
                        say(f"round {round_ + 1}, {kind}, {name}: {took:.2f} s")
                        remove_stack(stack)
            load = open("/proc/loadavg").read().split()[:3]
            print(f"redeploy right after `docker service rm` of the stack's last service "
                  f"({ROUNDS} rounds; load average {' '.join(load)} at the end)")
            print("| task | " + " | ".join(name for name, _ in binaries) + " |")
            print("|---|" + "---|" * len(binaries))
            for kind in SCENARIOS:
                cells = [" / ".join(f"{t:.1f}" for t in results[(kind, name)]) + " s" for name, _ in binaries]
                print(f"| {kind} | " + " | ".join(cells) + " |")
        finally:
            for stack in stacks:
                remove_stack(stack)
            run(["sh", "-c", "docker image ls -q --filter label=skbench=deploy-after-rm | xargs -r docker rmi -f"], check=False)


if __name__ == "__main__":
    main()
