#!/usr/bin/env python3
"""`swarmkeeper diff` of a stack of SERVICES services on the local engine's swarm.

The stack (a FROM-scratch busybox image, each service with its own environment, a published
port, labels and a healthcheck) is deployed once with `docker stack deploy --resolve-image
never`. Then, RUNS times each, wall time until the command returns:

- `swarmkeeper diff --no-safe-defaults --no-resolve-image`: the stack as docker deployed it,
  so every service is unchanged (exit 0 expected: it is also a takeover check);
- `swarmkeeper diff --no-resolve-image`: with the safe defaults, so every service would change
  (exit 1 expected) and each field is compared and printed;
- `docker stack deploy --resolve-image never` of the unchanged file, the closest step a docker
  user has (it has no dry run: it sends every service's update).

Everything it makes is named skbdf<pid>... and removed at the end, also on failure. Runs as root
on a swarm manager; needs the docker CLI and /bin/busybox (busybox-static).

Env: SWARMKEEPER (default target/bench/release/swarmkeeper, built when missing), SERVICES (50),
RUNS (10).
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVICES = int(os.environ.get("SERVICES", "50"))
RUNS = int(os.environ.get("RUNS", "10"))
PREFIX = f"skbdf{os.getpid() % 100000}"


def say(text):
    print(f"bench: {text}", file=sys.stderr, flush=True)


def run(args, check=True):
    out = subprocess.run(args, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise SystemExit(f"bench: {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out


def timed(args):
    start = time.monotonic()
    out = run(args, check=False)
    return time.monotonic() - start, out


def binary():
    path = os.environ.get("SWARMKEEPER") or os.path.join(
        REPO, "target/bench/release/swarmkeeper"
    )
    if not os.path.exists(path):
        say("building the release binary into target/bench")
        env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(REPO, "target/bench"))
        subprocess.run(
            ["cargo", "build", "--release", "-q", "-p", "swarmkeeper-cli"],
            cwd=REPO,
            env=env,
            check=True,
        )
    return path


def stack_file(image):
    lines = ["services:"]
    for i in range(SERVICES):
        lines += [
            f"  s{i}:",
            f"    image: {image}",
            '    command: ["/bin/busybox", "sleep", "3600"]',
            "    environment:",
            f'      INDEX: "{i}"',
            "      MODE: bench",
            "    ports:",
            f'      - "{30000 + (os.getpid() % 1000) * 50 + i}:80"',
            "    healthcheck:",
            '      test: ["CMD", "/bin/busybox", "true"]',
            "      interval: 30s",
            "    deploy:",
            "      replicas: 0",
            "      labels:",
            f'        bench.index: "{i}"',
        ]
    return "\n".join(lines) + "\n"


def median_ms(samples):
    return f"{statistics.median(samples) * 1000:.0f} ms"


def main():
    sk = binary()
    work = tempfile.mkdtemp(prefix="skbench-diff-")
    image = f"{PREFIX}:1"
    stack = PREFIX
    try:
        shutil.copy("/bin/busybox", os.path.join(work, "busybox"))
        with open(os.path.join(work, "Dockerfile"), "w") as f:
            f.write("FROM scratch\nCOPY busybox /bin/busybox\nLABEL skbench=diff\n")
        env_build = dict(os.environ, DOCKER_BUILDKIT="0")
        subprocess.run(
            ["docker", "build", "-q", "-t", image, work], env=env_build, check=True,
            capture_output=True,
        )
        path = os.path.join(work, "stack.yml")
        with open(path, "w") as f:
            f.write(stack_file(image))
        say(f"docker stack deploy of {SERVICES} services (replicas 0: nothing runs)")
        run(["docker", "stack", "deploy", "--resolve-image", "never", "-c", path, stack])
        unchanged = [sk, "diff", "--no-safe-defaults", "--no-resolve-image", "-c", path, stack]
        changed = [sk, "diff", "--no-resolve-image", "-c", path, stack]
        docker = ["docker", "stack", "deploy", "--resolve-image", "never", "-c", path, stack]
        figures = {}
        for name, args, code in [
            ("swarmkeeper diff, nothing would change", unchanged, 0),
            ("swarmkeeper diff, every service would change", changed, 1),
            ("docker stack deploy, unchanged file", docker, 0),
        ]:
            samples = []
            for _ in range(RUNS):
                took, out = timed(args)
                if out.returncode != code:
                    raise SystemExit(
                        f"bench: {' '.join(args)} exited {out.returncode}, not {code}:\n"
                        f"{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
                    )
                samples.append(took)
            figures[name] = samples
            say(f"{name}: {median_ms(samples)}")
        print(f"| what ({SERVICES} services, {RUNS} runs) | median | fastest | slowest |")
        print("|---|---|---|---|")
        for name, samples in figures.items():
            print(
                f"| {name} | {median_ms(samples)} | {min(samples) * 1000:.0f} ms | "
                f"{max(samples) * 1000:.0f} ms |"
            )
    finally:
        subprocess.run(["docker", "stack", "rm", stack], capture_output=True)
        for _ in range(60):
            left = run(["docker", "service", "ls", "-q", "--filter",
                        f"label=com.docker.stack.namespace={stack}"], check=False)
            if not left.stdout.strip():
                break
            time.sleep(0.5)
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
