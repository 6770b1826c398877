#!/usr/bin/env python3
"""Helpers of bench/server-objects.sh (standard library only).

    server_objects.py create  --count N --services S --image IMG
    server_objects.py remove
    server_objects.py measure --base URL --token T --cookie C --requests R --warmup W

`create` makes N configs and N secrets (`skbench-obj-NNN`, 64 bytes each, label
skbench=server-objects) and S services of 0 replicas (no tasks to wait for) that each use
10 configs and 10 secrets, through the Engine API. `measure` times GET /configs, GET
/api/configs, GET /secrets and GET /api/secrets, sequentially on one keep-alive connection
each, and prints p50/p90/p99/max in ms (nearest-rank).
"""

import argparse
import base64
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine import Engine  # noqa: E402
from server_services import connect  # noqa: E402

LABELS = {"skbench": "server-objects"}


def create(args):
    engine = Engine()
    data = base64.b64encode(b"x" * 64).decode()
    ids = {"configs": [], "secrets": []}
    for kind in ("configs", "secrets"):
        for i in range(1, args.count + 1):
            name = f"skbench-obj-{i:03d}"
            answer = engine.request("POST", f"/{kind}/create",
                                    {"Name": name, "Labels": LABELS, "Data": data})
            ids[kind].append((answer["ID"], name))
    for s in range(args.services):
        chosen = range(s * 10, s * 10 + 10)
        spec = {
            "Name": f"skbench-obj-svc-{s:03d}",
            "Labels": LABELS,
            "Mode": {"Replicated": {"Replicas": 0}},
            "TaskTemplate": {"ContainerSpec": {
                "Image": args.image,
                "Command": ["/bin/busybox", "sleep", "1000000"],
                "Configs": [{"ConfigID": ids["configs"][i % args.count][0],
                             "ConfigName": ids["configs"][i % args.count][1],
                             "File": {"Name": f"/c{i}", "UID": "0", "GID": "0", "Mode": 292}}
                            for i in chosen],
                "Secrets": [{"SecretID": ids["secrets"][i % args.count][0],
                             "SecretName": ids["secrets"][i % args.count][1],
                             "File": {"Name": f"s{i}", "UID": "0", "GID": "0", "Mode": 292}}
                            for i in chosen],
            }},
        }
        engine.request("POST", "/services/create", spec)


def remove(_args):
    engine = Engine()
    import json
    import urllib.parse
    f = urllib.parse.quote(json.dumps({"label": ["skbench=server-objects"]}))
    for s in engine.request("GET", f"/services?filters={f}"):
        engine.request("DELETE", f"/services/{s['ID']}", ok=(200, 404))
    for kind in ("configs", "secrets"):
        for o in engine.request("GET", f"/{kind}?filters={f}"):
            engine.request("DELETE", f"/{kind}/{o['ID']}", ok=(204, 404))


def pct(times, p):
    return times[max(1, math.ceil(p / 100 * len(times))) - 1]


def time_get(base, path, headers, warmup, requests):
    """Sorted wall times (ms) of `requests` sequential GET `path` on one keep-alive
    connection after `warmup`, and the last answer's size; any status but 200 stops."""
    conn = connect(base)
    times = []
    size = 0
    for i in range(warmup + requests):
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        elapsed = (time.perf_counter() - t0) * 1000
        if resp.status != 200:
            raise SystemExit(f"GET {path}: HTTP {resp.status}: {body[:300]!r}")
        size = len(body)
        if i >= warmup:
            times.append(elapsed)
    times.sort()
    return times, size


def measure(args):
    print(f"{'request':<18} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}  ms, {args.requests} sequential")
    for path, headers in (("/configs", {"Cookie": args.cookie}),
                          ("/api/configs", {"Authorization": f"Bearer {args.token}"}),
                          ("/secrets", {"Cookie": args.cookie}),
                          ("/api/secrets", {"Authorization": f"Bearer {args.token}"})):
        times, size = time_get(args.base, path, headers, args.warmup, args.requests)
        print(f"GET {path:<14} {pct(times, 50):7.1f} {pct(times, 90):7.1f} {pct(times, 99):7.1f}"
              f" {times[-1]:7.1f}  ({size} bytes)")


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("--count", type=int, default=500)
    c.add_argument("--services", type=int, default=50)
    c.add_argument("--image", required=True)
    sub.add_parser("remove")
    m = sub.add_parser("measure")
    m.add_argument("--base", required=True)
    m.add_argument("--token", required=True)
    m.add_argument("--cookie", required=True)
    m.add_argument("--requests", type=int, default=300)
    m.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    {"create": create, "remove": remove, "measure": measure}[args.cmd](args)


if __name__ == "__main__":
    main()
