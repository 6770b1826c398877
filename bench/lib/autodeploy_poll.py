"""Helpers of bench/autodeploy-poll.sh: create and remove the followed services, sum their
versions (a spec write raises a service's version), and read a process's CPU time and memory.
Standard library only."""

import argparse
import json
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from engine import Engine  # noqa: E402

LABEL = "skbench"
LABEL_VALUE = "autodeploy"


def services(engine):
    q = urllib.parse.quote(json.dumps({"label": [f"{LABEL}={LABEL_VALUE}"]}))
    return engine.request("GET", f"/services?filters={q}")


def create(args):
    engine = Engine()
    for i in range(1, args.count + 1):
        spec = {
            "Name": f"skauto-{i:04d}",
            "Labels": {
                LABEL: LABEL_VALUE,
                "swarmkeeper.autodeploy": "true",
                "swarmkeeper.autodeploy.interval": args.interval,
            },
            "TaskTemplate": {
                "ContainerSpec": {"Image": args.image, "Command": ["/bin/busybox", "sleep", "1000000"]},
            },
            # No task: the bench measures the polling, not 1,000 containers.
            "Mode": {"Replicated": {"Replicas": 0}},
        }
        engine.request("POST", "/services/create", spec)
    engine.close()


def remove(_args):
    engine = Engine()
    for s in services(engine):
        engine.request("DELETE", f"/services/{s['ID']}", ok=(200, 204, 404))
    engine.close()


def versions(_args):
    engine = Engine()
    found = services(engine)
    engine.close()
    print(json.dumps({"services": len(found), "version_sum": sum(s["Version"]["Index"] for s in found)}))


def usage(args):
    with open(f"/proc/{args.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    mem = {}
    with open(f"/proc/{args.pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                mem[key] = int(value.split()[0])
    print(json.dumps({"cpu_seconds": cpu, "rss_kib": mem["VmRSS"], "hwm_kib": mem["VmHWM"]}))


def heads(args):
    """Manifest HEADs the registry answered in [start, start + seconds), by the `time` of its
    "response completed" lines (RFC 3339, nanoseconds), as JSON: all of them and the 401s
    among them (basic-auth challenges answered again would be those)."""
    import datetime
    import re

    stamp = re.compile(r'time="(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)"')
    end = args.start + args.seconds
    count = unauthorized = 0
    with open(args.log, errors="replace") as f:
        for line in f:
            if "response completed" not in line or "http.request.method=HEAD" not in line:
                continue
            m = stamp.search(line)
            if not m:
                continue
            zone = "+00:00" if m.group(3) == "Z" else m.group(3)
            at = datetime.datetime.fromisoformat(m.group(1) + zone).timestamp()
            at += float("0." + (m.group(2) or "0"))
            if args.start <= at < end:
                count += 1
                unauthorized += "http.response.status=401" in line
    print(json.dumps({"heads": count, "unauthorized": unauthorized}))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--image", required=True)
    c.add_argument("--interval", default="1m")
    sub.add_parser("remove")
    sub.add_parser("versions")
    h = sub.add_parser("heads")
    h.add_argument("--log", required=True)
    h.add_argument("--start", type=float, required=True)
    h.add_argument("--seconds", type=float, required=True)
    u = sub.add_parser("usage")
    u.add_argument("--pid", type=int, required=True)
    args = parser.parse_args()
    {"create": create, "remove": remove, "versions": versions, "heads": heads, "usage": usage}[args.cmd](args)


if __name__ == "__main__":
    main()
