"""What the Python benchmarks share: progress on stderr, running commands, the binary to
measure (SWARMKEEPER, else a release build in target/bench, built when missing)."""

import os
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
