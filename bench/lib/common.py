"""What the Python benchmarks share: progress on stderr, running commands, the binary to
measure (SWARMKEEPER, else a release build in target/bench, built when missing), removing a
stack with its deploy history."""

import os
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def say(text):
    print(f"bench: {text}", file=sys.stderr, flush=True)


def run(args, check=True, env=None):
    out = subprocess.run(args, capture_output=True, text=True, env=env)
    if check and out.returncode != 0:
        raise SystemExit(f"bench: {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out


def timed(args, env=None, check=False):
    """Wall time of a command, and its output."""
    start = time.monotonic()
    out = run(args, check=check, env=env)
    return time.monotonic() - start, out


def swarmkeeper_bin():
    path = os.environ.get("SWARMKEEPER")
    if path:
        return path
    target = os.path.join(REPO, "target", "bench")
    path = os.path.join(target, "release", "swarmkeeper")
    if not os.access(path, os.X_OK):
        say(f"building swarmkeeper (release) into {target}; this takes minutes")
        env = dict(os.environ, CARGO_TARGET_DIR=target)
        run(["cargo", "build", "--release", "-q", "-p", "swarmkeeper-cli"], env=env)
    return path


def remove_stack(name):
    """`docker stack rm`, the stack's deploy history and lock in the swarm (which `docker stack
    rm` leaves on purpose), and a wait until its containers are gone, so its image can go."""
    run(["docker", "stack", "rm", name], check=False)
    listed = run(["docker", "config", "ls", "-q", "--filter",
                  f"label=swarmkeeper.revision.stack={name}"], check=False).stdout.split()
    run(["docker", "config", "rm", *listed, f"swarmkeeper-lock-{name}"], check=False)
    deadline = time.monotonic() + 60
    label = f"label=com.docker.stack.namespace={name}"
    while time.monotonic() < deadline:
        if not run(["docker", "ps", "-aq", "--filter", label], check=False).stdout.strip():
            return
        time.sleep(0.2)


def busybox_image(tmp, image, cmd, label):
    """Builds IMAGE `FROM scratch` with /bin/busybox (busybox-static), CMD `cmd` (a JSON array)
    and LABEL `label`, with the classic builder (under a second)."""
    context = os.path.join(tmp, "image-" + image.replace(":", "-").replace("/", "-"))
    os.makedirs(context)
    shutil.copy("/bin/busybox", os.path.join(context, "busybox"))
    with open(os.path.join(context, "Dockerfile"), "w") as f:
        f.write(f"FROM scratch\nCOPY busybox /bin/busybox\nLABEL {label}\nCMD {cmd}\n")
    run(["docker", "build", "-q", "-t", image, context], env=dict(os.environ, DOCKER_BUILDKIT="0"))
    return image


def ms(seconds):
    return f"{seconds * 1000:.0f} ms"


def spread(values):
    """Median, min, max (and how many) of timings in seconds."""
    return (f"{ms(statistics.median(values))} (min {ms(min(values))}, max {ms(max(values))}, "
            f"n={len(values)})")
