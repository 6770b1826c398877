#!/usr/bin/env python3
"""A dashboard change followed live (issue 14): from the form's POST to the first deploy line
a browser receives, and to the end, next to `docker service update --detach=false` for the
same image change (time to its first progress line and to its exit).

On the local engine's swarm: two tags of a FROM-scratch busybox image, one target service of
1 replica (`--update-monitor 1s`, `--stop-grace-period 1s`), `swarmkeeper server` on a free
port with a temporary state dir, logged in as the first admin. ROUNDS times, alternating:
  - dashboard: POST /services/T/edit (the form, confirm=yes) -> time to the 303; then the
    job's event stream (GET /api/jobs/ID/events, as static/job.js reads it) -> time to the
    first line of the deploy engine about T, and to `event: end`;
  - CLI: `docker service update --detach=false --image` -> time to its first progress line
    (after the service name it prints first) and to its exit.

Usage: bench/job-progress.py   (root, after scripts/ensure-engine.sh)
Env:   ROUNDS (5), SWARMKEEPER (default target/debug/swarmkeeper)
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))
from dashboard import Dashboard  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SK = os.environ.get("SWARMKEEPER", str(ROOT / "target" / "debug" / "swarmkeeper"))
ROUNDS = int(os.environ.get("ROUNDS", 5))
IMAGES = ("skbench-job:1", "skbench-job:2")
TARGET = "skbench-job-target"


def docker(*args):
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


def remove_all():
    subprocess.run(["docker", "service", "rm", TARGET], capture_output=True)
    for config in subprocess.run(["docker", "config", "ls", "-q", "--filter",
                                  f"label=swarmkeeper.revision.stack={TARGET}"],
                                 capture_output=True, text=True).stdout.split():
        subprocess.run(["docker", "config", "rm", config], capture_output=True)
    subprocess.run(["docker", "config", "rm", f"swarmkeeper-lock-{TARGET}"], capture_output=True)


def load():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def spread(values):
    s = sorted(values)
    return f"median {s[len(s) // 2]:.2f} s ({s[0]:.2f}-{s[-1]:.2f})"


def main():
    tmp = Path(tempfile.mkdtemp(prefix="skbench-job-"))
    dash = None
    try:
        remove_all()
        ctx = tmp / "ctx"
        ctx.mkdir()
        shutil.copy("/bin/busybox", ctx / "busybox")
        (ctx / "Dockerfile").write_text("FROM scratch\nCOPY busybox /bin/busybox\n")
        subprocess.run(["docker", "build", "-q", "-t", IMAGES[0], str(ctx)], check=True,
                       capture_output=True, env=dict(os.environ, DOCKER_BUILDKIT="0"))
        docker("tag", IMAGES[0], IMAGES[1])
        docker("service", "create", "--quiet", "--name", TARGET, "--replicas", "1",
               "--update-monitor", "1s", "--stop-grace-period", "1s",
               IMAGES[0], "/bin/busybox", "sleep", "1000000")
        dash = Dashboard(SK, tmp, "bench-job-password-1").start()
        cookie, csrf = dash.cookie, dash.csrf
        conn = dash.connection()

        rows = {"answer": [], "first": [], "end": [], "cli_first": [], "cli_end": []}
        current = 0
        print(f"binary {SK}; load average before: {load()}")
        for _ in range(ROUNDS):
            current = 1 - current
            form = urllib.parse.urlencode({"name": TARGET, "image": IMAGES[current], "confirm": "yes",
                                           "csrf_token": csrf})
            t0 = time.perf_counter()
            conn.request("POST", f"/services/{TARGET}/edit", body=form,
                         headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
            resp = conn.getresponse()
            resp.read()
            location = resp.getheader("Location") or ""
            if resp.status != 303 or not location.startswith("/jobs/"):
                raise SystemExit(f"POST /services/{TARGET}/edit: HTTP {resp.status} {location!r}")
            rows["answer"].append(time.perf_counter() - t0)
            stream = dash.connection()
            stream.request("GET", f"/api{location}/events", headers={"Cookie": cookie})
            events = stream.getresponse()
            first = None
            while True:
                line = events.fp.readline().decode()
                if not line:
                    raise SystemExit("the event stream ended without `event: end`")
                if first is None and line.startswith(f"data: {TARGET}:"):
                    first = time.perf_counter() - t0
                if line.startswith("event: end"):
                    break
            rows["first"].append(first)
            rows["end"].append(time.perf_counter() - t0)
            stream.close()

            current = 1 - current
            t0 = time.perf_counter()
            cli = subprocess.Popen(["docker", "service", "update", "--detach=false", "--image",
                                    IMAGES[current], TARGET], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            cli_first = None
            for raw in cli.stdout:
                text = raw.decode().strip()
                if cli_first is None and text and text != TARGET:
                    cli_first = time.perf_counter() - t0
            cli.wait()
            rows["cli_first"].append(cli_first if cli_first is not None else float("nan"))
            rows["cli_end"].append(time.perf_counter() - t0)
        print(f"load average after: {load()}; {ROUNDS} image changes each way, alternating")
        print(f"- dashboard: POST -> 303 {spread(rows['answer'])}; -> first deploy line on the stream "
              f"{spread(rows['first'])}; -> end {spread(rows['end'])}")
        print(f"- docker service update --detach=false: -> first progress line {spread(rows['cli_first'])}; "
              f"-> exit {spread(rows['cli_end'])}")
    finally:
        if dash:
            dash.stop()
        remove_all()
        for image in IMAGES:
            subprocess.run(["docker", "rmi", image], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
