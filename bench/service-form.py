#!/usr/bin/env python3
"""The service form (issue 14): its page and JSON twin on a swarm of COUNT services, and how
long a form edit takes to converge next to `docker service update --image` for the same change.

On the local engine's swarm: builds two tags of a FROM-scratch busybox image, creates COUNT
services of 0 replicas (labelled skbench=service-form) and one target service of 1 replica
(`--update-monitor 1s`, `--stop-grace-period 1s`), starts `swarmkeeper server` on a free port
with a temporary state dir, and times on one keep-alive connection, after WARMUP untimed:
  - GET /services/TARGET/edit (the form page, HTML) and GET /api/services/TARGET (its twin);
  - POST /services/TARGET/edit without confirm (the preview: form -> compose -> spec, the diff
    and the lint of the new spec; nothing applied);
then EDITS image changes alternating between `PUT /api/services/TARGET` (through the deploy
engine: followed until converged, recorded) and `docker service update --image` (which also
waits until the service converges), each switching the tag between the two.

Usage: bench/service-form.py   (root, after scripts/ensure-engine.sh)
Env:   COUNT (200), REQUESTS (200), WARMUP (20), EDITS (5 of each),
       SWARMKEEPER (default target/debug/swarmkeeper)
Needs: docker CLI, /bin/busybox (busybox-static), python3.
"""

import json
import math
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
COUNT = int(os.environ.get("COUNT", 200))
REQUESTS = int(os.environ.get("REQUESTS", 200))
WARMUP = int(os.environ.get("WARMUP", 20))
EDITS = int(os.environ.get("EDITS", 5))
LABEL = "skbench=service-form"
IMAGES = ("skbench-form:1", "skbench-form:2")
TARGET = "skbench-form-target"


def say(text):
    print(f"bench: {text}", file=sys.stderr, flush=True)


def docker(*args):
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


def remove_all():
    ids = subprocess.run(["docker", "service", "ls", "-q", "--filter", f"label={LABEL}"],
                         capture_output=True, text=True).stdout.split()
    subprocess.run(["docker", "service", "rm", TARGET], capture_output=True)
    if ids:
        subprocess.run(["docker", "service", "rm", *ids], capture_output=True)
        # Removal is asynchronous: a name is free again only once the service is gone.
        for _ in range(300):
            if not subprocess.run(["docker", "service", "ls", "-q", "--filter", f"label={LABEL}"],
                                  capture_output=True, text=True).stdout.split():
                break
            time.sleep(0.2)
    for config in subprocess.run(["docker", "config", "ls", "-q", "--filter",
                                  f"label=swarmkeeper.revision.stack={TARGET}"],
                                 capture_output=True, text=True).stdout.split():
        subprocess.run(["docker", "config", "rm", config], capture_output=True)
    subprocess.run(["docker", "config", "rm", f"swarmkeeper-lock-{TARGET}"], capture_output=True)


def pct(times, p):
    s = sorted(times)
    return s[max(1, math.ceil(p / 100 * len(s))) - 1]


def main():
    tmp = Path(tempfile.mkdtemp(prefix="skbench-form-"))
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
        say(f"creating {COUNT} services of 0 replicas and {TARGET}")
        for i in range(COUNT):
            docker("service", "create", "--detach", "--quiet", "--name", f"skbench-form-{i:03d}",
                   "--label", LABEL, "--replicas", "0", IMAGES[0], "/bin/busybox", "sleep", "1000000")
        docker("service", "create", "--quiet", "--name", TARGET, "--label", LABEL, "--replicas", "1",
               "--update-monitor", "1s", "--stop-grace-period", "1s", "--env", "A=1",
               IMAGES[0], "/bin/busybox", "sleep", "1000000")

        dash = Dashboard(SK, tmp, "bench-form-password-1").start()
        cookie, csrf, token = dash.cookie, dash.csrf, dash.api_token()
        conn = dash.connection()

        def call(method, path, body=None, headers=None):
            t0 = time.perf_counter()
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status >= 400:
                raise SystemExit(f"{method} {path}: HTTP {resp.status}: {data[:300]!r}")
            return (time.perf_counter() - t0) * 1e3, len(data)

        preview = urllib.parse.urlencode({"name": TARGET, "image": IMAGES[1],
                                          "command": "/bin/busybox sleep 1000000", "env": "A=2",
                                          "update_monitor": "1s", "csrf_token": csrf})
        routes = [
            ("GET /services/T/edit (form page)", "GET", f"/services/{TARGET}/edit", None, {"Cookie": cookie}),
            ("GET /api/services/T (JSON twin)", "GET", f"/api/services/{TARGET}", None,
             {"Authorization": f"Bearer {token}"}),
            ("POST /services/T/edit (preview)", "POST", f"/services/{TARGET}/edit", preview,
             {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}),
        ]
        print(f"load average {open('/proc/loadavg').read().split()[:3]}, "
              f"{len(docker('service', 'ls', '-q').split())} services, binary {SK}")
        print("| request | p50 | p90 | p99 | max | answer |\n|---|---|---|---|---|---|")
        for label, method, path, body, headers in routes:
            for _ in range(WARMUP):
                call(method, path, body, headers)
            times, size = [], 0
            for _ in range(REQUESTS):
                t, size = call(method, path, body, headers)
                times.append(t)
            print(f"| {label} | {pct(times, 50):.1f} ms | {pct(times, 90):.1f} ms | "
                  f"{pct(times, 99):.1f} ms | {max(times):.1f} ms | {size / 1024:.0f} KB |")

        form_times, cli_times = [], []
        current = 0
        for _ in range(EDITS):
            current = 1 - current
            body = json.dumps({"name": TARGET, "image": IMAGES[current],
                               "command": "/bin/busybox sleep 1000000", "env": ["A=1"],
                               "update_monitor": "1s", "replicas": 1})
            t, _ = call("PUT", f"/api/services/{TARGET}", body,
                        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            form_times.append(t / 1e3)
            current = 1 - current
            t0 = time.perf_counter()
            docker("service", "update", "--quiet", "--image", IMAGES[current], TARGET)
            cli_times.append(time.perf_counter() - t0)
        print(f"\nimage change until converged, {EDITS} of each, alternating:")
        print(f"- form edit (PUT /api/services, deploy engine): "
              f"median {sorted(form_times)[len(form_times) // 2]:.2f} s, "
              f"range {min(form_times):.2f}-{max(form_times):.2f} s")
        print(f"- docker service update --image:                "
              f"median {sorted(cli_times)[len(cli_times) // 2]:.2f} s, "
              f"range {min(cli_times):.2f}-{max(cli_times):.2f} s")
        print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")
    finally:
        if dash:
            dash.stop()
        remove_all()
        for image in IMAGES:
            subprocess.run(["docker", "rmi", image], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
