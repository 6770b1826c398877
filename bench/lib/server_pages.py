#!/usr/bin/env python3
"""Helpers of bench/server-pages.sh (standard library only).

    server_pages.py nodes   --base URL --secret S --count N
    server_pages.py measure --base URL --token T --cookie C --requests R --warmup W
    server_pages.py compare --base URL --token T --cookie C --other URL --other-token T
                            --other-cookie C --requests R --warmup W

`nodes` posts one agent report for each of N simulated nodes (`simnode-NNN`, without a swarm
node ID: the server lists them as reporting engines outside the swarm), each with
20 images, 5 volumes and a GC run, as `swarmkeeper agent` does (POST /api/agent/report with
the shared secret as a bearer token). `measure` finds one of each object (a service, a task,
a stack, a simulated node, the swarm's own node, a secret, a config) through the API, then
times every page and its JSON twin, sequentially on one keep-alive connection each (HTML
with the admin's session cookie, JSON with a bearer token), and prints p50/p90/p99/max in ms
(nearest rank) and the answer's size. `compare` times the pages issue 14 named as slow on two
servers of the same swarm (another binary, e.g. the commit before a change), one request to
each in turn, so that both see the same load, and prints both percentiles side by side.
"""

import argparse
import datetime
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_objects import pct, time_get  # noqa: E402
from server_services import connect  # noqa: E402


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def node_report(i, now):
    gib = 1 << 30
    images = []
    for k in range(20):
        images.append({
            "id": "sha256:" + f"{i:04d}{k:04d}".ljust(64, "a"),
            "repo_tags": [f"registry.example/app{k}:{i}"],
            "size_bytes": 200 << 20,
            "shared_bytes": 50 << 20,
            "first_seen": iso(now - datetime.timedelta(hours=30 + k)),
            "last_used": iso(now) if k < 5 else None,
            "in_use": k < 5,
            "keep_reason": "in-use" if k < 5 else "not-needed",
        })
    volumes = [{
        "name": f"vol{k}", "driver": "local",
        "mountpoint": f"/var/lib/docker/volumes/vol{k}/_data",
        "size_bytes": (k + 1) << 20, "labels": {}, "containers": [],
    } for k in range(5)]
    return {
        # No swarm node ID: an engine outside the swarm that reports (a swarm of 50 real nodes
        # cannot be simulated on one machine); its page and rows come from the report.
        "node_id": "",
        "hostname": f"simnode-{i:03d}",
        "engine_version": "20.10.24+dfsg1",
        "reported_at": iso(now),
        "agent_version": "0.1.0",
        "interval_seconds": 30,
        "disk": {
            "filesystem": {"path": "/var/lib/docker", "capacity_bytes": 100 * gib,
                           "available_bytes": (40 + i % 30) * gib},
            "usage_percent": 60 - i % 30, "used_bytes": (60 - i % 30) * gib,
            "image_count": 20, "images_unique_bytes": 3 * gib, "images_shared_bytes": gib,
            "container_count": 5, "containers_bytes": gib, "logs_bytes": 1 << 20,
            "volume_count": 5, "volumes_bytes": 15 << 20, "build_cache_bytes": 0,
            "other_bytes": 50 * gib,
        },
        "disk_breakdown_at": iso(now),
        "high_threshold_percent": 85,
        "low_threshold_percent": 80,
        "images": images,
        "gc_runs": [{
            "started_at": iso(now - datetime.timedelta(minutes=5)),
            "trigger": "interval", "usage_percent_before": 86, "usage_percent_after": 60,
            "bytes_freed": gib, "deleted": [], "containers_removed": 1, "outcome": "ok",
        }],
        "volumes": volumes,
    }


def nodes(args):
    now = datetime.datetime.now(datetime.timezone.utc)
    conn = connect(args.base)
    for i in range(1, args.count + 1):
        body = json.dumps(node_report(i, now))
        conn.request("POST", "/api/agent/report", body=body,
                     headers={"Authorization": f"Bearer {args.secret}",
                              "Content-Type": "application/json"})
        resp = conn.getresponse()
        answer = resp.read()
        if resp.status not in (200, 204):
            raise SystemExit(f"report of simnode-{i:03d}: HTTP {resp.status}: {answer[:300]!r}")


def get_json(conn, path, token):
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise SystemExit(f"GET {path}: HTTP {resp.status}: {body[:300]!r}")
    return json.loads(body)


def q(s):
    return urllib.parse.quote(s, safe="")


def measure(args):
    conn = connect(args.base)
    services = get_json(conn, "/api/services", args.token)["services"]
    service = next(s["name"] for s in services if s["name"].startswith("skbench-"))
    detail = get_json(conn, f"/api/services/{q(service)}", args.token)
    task = detail["tasks"][0]["id"]
    stack = next(s["name"] for s in get_json(conn, "/api/stacks", args.token)["stacks"])
    listed = get_json(conn, "/api/nodes", args.token)["nodes"]
    swarm_node = next(n["id"] for n in listed if not n["id"].startswith("hostname:"))
    sim_node = next(n["id"] for n in listed if n["id"].startswith("hostname:simnode"))
    secret = get_json(conn, "/api/secrets", args.token)["objects"][0]["name"]
    config = get_json(conn, "/api/configs", args.token)["objects"][0]["name"]
    twins = [
        ("/", "/api/overview"),
        ("/events", "/api/events"),
        ("/nodes", "/api/nodes"),
        (f"/nodes/{q(swarm_node)}", f"/api/nodes/{q(swarm_node)}"),
        (f"/nodes/{q(sim_node)}", f"/api/nodes/{q(sim_node)}"),
        (f"/nodes/{q(swarm_node)}/drain", f"/api/nodes/{q(swarm_node)}/drain"),
        ("/services", "/api/services"),
        (f"/services/{q(service)}", f"/api/services/{q(service)}"),
        (f"/tasks/{q(task)}", f"/api/tasks/{q(task)}"),
        ("/stacks", "/api/stacks"),
        (f"/stacks/{q(stack)}", f"/api/stacks/{q(stack)}"),
        ("/networks", "/api/networks"),
        ("/volumes", "/api/volumes"),
        ("/secrets", "/api/secrets"),
        (f"/secrets/{q(secret)}", f"/api/secrets/{q(secret)}"),
        ("/configs", "/api/configs"),
        (f"/configs/{q(config)}", f"/api/configs/{q(config)}"),
        ("/registries", "/api/registries"),
        ("/users", "/api/users"),
        ("/audit", "/api/audit"),
        ("/account", "/api/tokens"),
        ("/stacks/deploy", None),
        (f"/logs/{q(service)}", None),
    ]
    print(f"{'request':<44} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7} {'bytes':>8}"
          f"  ms, {args.requests} sequential after {args.warmup}")
    worst = (0.0, "")
    for page, api in twins:
        for path, headers in ((page, {"Cookie": args.cookie}),
                              (api, {"Authorization": f"Bearer {args.token}"})):
            if path is None:
                continue
            times, size = time_get(args.base, path, headers, args.warmup, args.requests)
            p99 = pct(times, 99)
            worst = max(worst, (p99, path))
            shown = path if len(path) <= 40 else path[:37] + "..."
            print(f"GET {shown:<40} {pct(times, 50):7.1f} {pct(times, 90):7.1f} {p99:7.1f}"
                  f" {times[-1]:7.1f} {size:8d}", flush=True)
    print(f"slowest p99: {worst[0]:.1f} ms ({worst[1]}); budget 100 ms:"
          f" {'met' if worst[0] <= 100 else 'NOT met'}")


COMPARED = ["/", "/api/overview", "/nodes", "/api/nodes", "/services", "/api/services",
            "/stacks", "/api/stacks", "/secrets", "/api/secrets", "/configs", "/api/configs",
            "/volumes", "/api/volumes"]


def compare(args):
    sides = [(args.other, args.other_token, args.other_cookie), (args.base, args.token, args.cookie)]
    print(f"{'request':<18} {'p50 A':>7} {'p50 B':>7} {'p90 A':>7} {'p90 B':>7} {'p99 A':>7}"
          f" {'p99 B':>7} {'bytes A':>8} {'bytes B':>8}  ms; A {args.other}, B {args.base};"
          f" {args.requests} requests to each, in turn, after {args.warmup}")
    for path in COMPARED:
        conns = [connect(base) for base, _, _ in sides]
        times = [[], []]
        sizes = [0, 0]
        for i in range(args.warmup + args.requests):
            for k, (base, token, cookie) in enumerate(sides):
                headers = ({"Authorization": f"Bearer {token}"} if path.startswith("/api/")
                           else {"Cookie": cookie})
                t0 = time.perf_counter()
                conns[k].request("GET", path, headers=headers)
                resp = conns[k].getresponse()
                body = resp.read()
                elapsed = (time.perf_counter() - t0) * 1000
                if resp.status != 200:
                    raise SystemExit(f"GET {base}{path}: HTTP {resp.status}: {body[:300]!r}")
                sizes[k] = len(body)
                if i >= args.warmup:
                    times[k].append(elapsed)
        for t in times:
            t.sort()
        a, b = times
        print(f"{path:<18} {pct(a, 50):7.1f} {pct(b, 50):7.1f} {pct(a, 90):7.1f} {pct(b, 90):7.1f}"
              f" {pct(a, 99):7.1f} {pct(b, 99):7.1f} {sizes[0]:8d} {sizes[1]:8d}", flush=True)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    n = sub.add_parser("nodes")
    n.add_argument("--base", required=True)
    n.add_argument("--secret", required=True)
    n.add_argument("--count", type=int, default=50)
    m = sub.add_parser("measure")
    m.add_argument("--base", required=True)
    m.add_argument("--token", required=True)
    m.add_argument("--cookie", required=True)
    m.add_argument("--requests", type=int, default=200)
    m.add_argument("--warmup", type=int, default=10)
    c = sub.add_parser("compare")
    c.add_argument("--base", required=True)
    c.add_argument("--token", required=True)
    c.add_argument("--cookie", required=True)
    c.add_argument("--other", required=True)
    c.add_argument("--other-token", required=True)
    c.add_argument("--other-cookie", required=True)
    c.add_argument("--requests", type=int, default=200)
    c.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    {"nodes": nodes, "measure": measure, "compare": compare}[args.cmd](args)


if __name__ == "__main__":
    main()
