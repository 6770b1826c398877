#!/usr/bin/env python3
"""Helpers of bench/server-services.sh (standard library only).

    server_services.py create  --count N --image IMG --stacks K --per-stack M
    server_services.py wait    --count N --timeout S
    server_services.py token   --base http://127.0.0.1:PORT --password P
    server_services.py measure --base URL --token T --pid PID --engine-pid PID
                               [--requests 300] [--warmup 20] [--clients 4]
                               [--concurrent-requests 100] [--engine-requests 100]
    server_services.py report  RESULTS.json SERVICE_LS.json

`create` makes the services through the Engine API (the same spec `docker service create
--detach --label ... IMG /bin/busybox sleep 1000000` sends, without the CLI's registry
lookup). `measure` prints one JSON document: per-request wall times (ms) of the server's
GET /services (HTML, session cookie) and GET /api/services (JSON, bearer token), sequential
on one keep-alive connection and with several concurrent clients, the same for the
engine's own GET /services and GET /tasks over its socket (the two calls the server makes
for these pages), and the server's and the engine's CPU time over each run.
"""

import argparse
import http.client
import json
import math
import os
import re
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine import Engine  # noqa: E402

LABEL = "skbench"
LABEL_VALUE = "server-services"
STACK_LABEL = "com.docker.stack.namespace"


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# --- the swarm --------------------------------------------------------------------------

def create(args):
    engine = Engine()
    for i in range(1, args.count + 1):
        name = f"skbench-{i:03d}"
        labels = {LABEL: LABEL_VALUE}
        stack = (i - 1) // args.per_stack + 1
        if stack <= args.stacks:
            labels[STACK_LABEL] = f"bench{stack}"
        spec = {
            "Name": name,
            "Labels": labels,
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": args.image,
                    "Command": ["/bin/busybox", "sleep", "1000000"],
                    "Labels": dict(labels),
                    "StopGracePeriod": 1_000_000_000,
                },
                # No restart storm if something goes wrong: the bench wants 200 steady tasks.
                "RestartPolicy": {"Condition": "on-failure", "MaxAttempts": 3},
            },
            "Mode": {"Replicated": {"Replicas": 1}},
        }
        engine.request("POST", "/services/create", spec)
    engine.close()


def running_tasks(engine):
    q = urllib.parse.quote(json.dumps({"label": [f"{LABEL}={LABEL_VALUE}"]}))
    services = engine.request("GET", f"/services?status=true&filters={q}")
    running = sum((s.get("ServiceStatus") or {}).get("RunningTasks", 0) for s in services)
    return len(services), running


def task_states(engine):
    """How many of the bench's tasks are in each state, e.g. {'running': 12, 'preparing': 188}."""
    ours = {s["ID"] for s in engine.request(
        "GET", "/services?filters=" + urllib.parse.quote(json.dumps({"label": [f"{LABEL}={LABEL_VALUE}"]})))}
    states = {}
    for t in engine.request("GET", "/tasks"):
        if t["ServiceID"] in ours:
            st = t["Status"]["State"]
            states[st] = states.get(st, 0) + 1
    return states


def wait(args):
    engine = Engine()
    start = time.monotonic()
    last = None
    while True:
        p0 = time.monotonic()
        n, running = running_tasks(engine)
        took = time.monotonic() - p0
        if took > 2:
            log(f"  the engine took {took:.1f}s to answer GET /services?status=true")
        if running >= args.count:
            print(f"{time.monotonic() - start:.1f}")
            return
        now = time.monotonic() - start
        if last is None or now - last >= 5:
            states = ", ".join(f"{v} {k}" for k, v in sorted(task_states(engine).items()))
            log(f"  {now:3.0f}s: {running}/{args.count} running ({n} services); tasks: {states}")
            last = now
        if time.monotonic() - start > args.timeout:
            raise SystemExit(f"only {running} of {args.count} tasks running after {args.timeout}s")
        time.sleep(1)


# --- the server -------------------------------------------------------------------------

def connect(base):
    u = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=60)


COOKIE = "__Host-swarmkeeper_session"


def login(base, user, password):
    conn = connect(base)
    body = urllib.parse.urlencode({"username": user, "password": password, "next": "/"})
    conn.request("POST", "/login", body=body,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    resp.read()
    if resp.status not in (302, 303):
        raise SystemExit(f"POST /login: HTTP {resp.status}")
    for k, v in resp.getheaders():
        if k.lower() == "set-cookie" and v.startswith(COOKIE + "="):
            return v.split(";", 1)[0]
    raise SystemExit("POST /login set no session cookie")


def token(args):
    cookie = login(args.base, args.user, args.password)
    conn = connect(args.base)
    conn.request("GET", "/account", headers={"Cookie": cookie})
    resp = conn.getresponse()
    page = resp.read().decode()
    m = re.search(r'data-csrf="([^"]+)"', page)
    if resp.status != 200 or not m:
        raise SystemExit(f"GET /account: HTTP {resp.status}, no data-csrf")
    conn.request("POST", "/api/tokens", body=json.dumps({"name": "bench"}),
                 headers={"Cookie": cookie, "x-csrf-token": m.group(1),
                          "Content-Type": "application/json"})
    resp = conn.getresponse()
    payload = resp.read()
    if resp.status not in (200, 201):
        raise SystemExit(f"POST /api/tokens: HTTP {resp.status}: {payload[:300]!r}")
    print(json.dumps({"cookie": cookie, "token": json.loads(payload)["token"]}))


# --- measuring --------------------------------------------------------------------------

def cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Client:
    """One keep-alive connection to the server or to the engine's socket."""

    def __init__(self, kind, base=None, headers=None):
        self.kind, self.base, self.headers = kind, base, headers or {}
        self.open()

    def open(self):
        if self.kind == "engine":
            self.engine = Engine()
        elif self.kind == "pair":
            self.engine = Engine()
            self.other = Engine()
        else:
            self.conn = connect(self.base)

    def get(self, path):
        """Wall time of one GET in ms, and the body's size."""
        t0 = time.perf_counter()
        if self.kind == "engine":
            body = self.engine.request("GET", path, raw=True)
        elif self.kind == "pair":
            # Both paths at once, on two connections, as the server's try_join does.
            first, second = path.split("|")
            got = {}
            t = threading.Thread(target=lambda: got.setdefault(
                "b", self.other.request("GET", second, raw=True)))
            t.start()
            a = self.engine.request("GET", first, raw=True)
            t.join()
            body = a + got["b"]
        else:
            self.conn.request("GET", path, headers=self.headers)
            resp = self.conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise SystemExit(f"GET {path}: HTTP {resp.status}: {body[:300]!r}")
        return (time.perf_counter() - t0) * 1e3, len(body)


def run(make_client, path, clients, per_client, warmup, pids):
    """`clients` threads, each with its own connection: `warmup` untimed GETs, then all start
    together and each times `per_client` GETs. Returns times, sizes, wall time and CPU."""
    barrier = threading.Barrier(clients + 1)
    times, sizes, errors = [], set(), []
    lock = threading.Lock()

    def worker():
        try:
            c = make_client()
            for _ in range(warmup):
                c.get(path)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
            barrier.abort()
            return
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return
        mine = []
        try:
            for _ in range(per_client):
                ms, size = c.get(path)
                mine.append(ms)
                sizes.add(size)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    cpu = {k: cpu_seconds(p) - cpu0[k] for k, p in pids.items()}
    if errors:
        raise SystemExit(f"GET {path}: {errors[0]!r}")
    return {"times_ms": times, "bytes": sorted(sizes), "wall_s": wall,
            "cpu_s": cpu, "clients": clients}


def measure(args):
    pids = {"server": args.pid, "engine": args.engine_pid}
    cookie = {"Cookie": args.cookie}
    bearer = {"Authorization": f"Bearer {args.token}"}
    targets = [
        ("server", "GET /services (HTML, cookie)", "/services", cookie),
        ("server", "GET /api/services (JSON, bearer)", "/api/services", bearer),
        ("engine", "engine GET /services", "/services", None),
        ("engine", "engine GET /tasks", "/tasks", None),
        ("pair", "engine /services + /tasks at once", "/services|/tasks", None),
        ("engine", "engine GET /services?status=true", "/services?status=true", None),
    ]
    idle = idle_engine_cpu(args.engine_pid, 5.0)
    log(f"  dockerd idle: {idle:.1f} ms CPU per second")
    results = []
    for kind, label, path, headers in targets:
        def make(kind=kind, headers=headers):
            return Client(kind, args.base, headers)
        n = args.requests if kind == "server" else args.engine_requests
        log(f"  {label}: {args.warmup} warm-up + {n} sequential")
        r = run(make, path, 1, n, args.warmup, pids)
        results.append({"target": label, "mode": "sequential", **r})
        if kind == "server" or args.engine_concurrent:
            per = args.concurrent_requests
            log(f"  {label}: {args.clients} clients x ({args.concurrent_warmup} warm-up + {per})")
            r = run(make, path, args.clients, per, args.concurrent_warmup, pids)
            results.append({"target": label, "mode": f"{args.clients} clients", **r})
    print(json.dumps({"runs": results, "engine_idle_cpu_ms_per_s": idle}))


def idle_engine_cpu(pid, seconds):
    """dockerd's CPU time (ms per second) while nobody asks it anything: the swarm's own
    background work, which the per-request engine CPU figures include."""
    c0, t0 = cpu_seconds(pid), time.perf_counter()
    time.sleep(seconds)
    return (cpu_seconds(pid) - c0) * 1e3 / (time.perf_counter() - t0)


# --- report -----------------------------------------------------------------------------

def pct(sorted_times, p):
    """Nearest-rank percentile."""
    k = max(1, math.ceil(p / 100 * len(sorted_times)))
    return sorted_times[k - 1]


def fmt_ms(x):
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def report(args):
    with open(args.results) as f:
        results = json.load(f)
    runs = results["runs"]
    with open(args.service_ls) as f:
        ls = json.load(f)["results"][0]
    with open(args.memory) as f:
        mem = json.load(f)

    head = (f"{'request':<36} {'mode':<11} {'n':>4} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}"
            f" {'req/s':>6} {'srv cpu/req':>11} {'eng cpu/req':>11} {'body':>9}")
    print(head)
    print("-" * len(head))
    for r in runs:
        t = sorted(r["times_ms"])
        n = len(t)
        cpu = r["cpu_s"]
        body = r["bytes"]
        body_s = f"{body[0] / 1024:.0f} KiB" if len(body) == 1 else f"{body[0] // 1024}-{body[-1] // 1024} KiB"
        srv = f"{cpu['server'] / n * 1e3:.2f} ms" if not r["target"].startswith("engine") else "-"
        print(f"{r['target']:<36} {r['mode']:<11} {n:>4} {fmt_ms(pct(t, 50)):>7} {fmt_ms(pct(t, 90)):>7}"
              f" {fmt_ms(pct(t, 99)):>7} {fmt_ms(t[-1]):>7} {n / r['wall_s']:>6.1f} {srv:>11}"
              f" {cpu['engine'] / n * 1e3:>8.2f} ms {body_s:>9}")
    t = sorted(x * 1e3 for x in ls["times"])
    n = len(t)
    cpu = (ls.get("user", 0) + ls.get("system", 0)) * 1e3
    print(f"{'docker service ls (CLI, hyperfine)':<36} {'sequential':<11} {n:>4} {fmt_ms(pct(t, 50)):>7}"
          f" {fmt_ms(pct(t, 90)):>7} {fmt_ms(pct(t, 99)):>7} {fmt_ms(t[-1]):>7} {'':>6}"
          f" {'cli ' + format(cpu, '.1f') + ' ms':>11} {'':>11} {'':>9}")
    print()
    print("times in ms (wall time per request at the client; nearest-rank percentiles); cpu/req:")
    print("utime+stime of the server / of dockerd over the run divided by the requests; for the")
    print("CLI row, the docker CLI's own mean user+system time per run. dockerd idles at")
    print(f"{results['engine_idle_cpu_ms_per_s']:.1f} ms CPU per second with these services (included in eng cpu/req).")
    print()
    mib = lambda kb: f"{kb / 1024:.1f} MiB"  # noqa: E731
    print(f"server memory after the runs: VmRSS {mib(mem['VmRSS'])}, VmHWM {mib(mem['VmHWM'])}"
          f" (RssAnon {mib(mem['RssAnon'])}, RssFile {mib(mem['RssFile'])}), threads {mem['Threads']}")
    seq = [r for r in runs if not r["target"].startswith("engine") and r["mode"] == "sequential"]
    worst = max(pct(sorted(r["times_ms"]), 99) for r in seq)
    print(f"targets: p99 < 100 ms (sequential, worst of both pages: {fmt_ms(worst)} ms): "
          f"{'met' if worst < 100 else 'MISSED'}; memory < 64 MiB (VmHWM): "
          f"{'met' if mem['VmHWM'] < 64 * 1024 else 'MISSED'}")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("--count", type=int, default=200)
    c.add_argument("--image", required=True)
    c.add_argument("--stacks", type=int, default=5)
    c.add_argument("--per-stack", type=int, default=20)
    w = sub.add_parser("wait")
    w.add_argument("--count", type=int, default=200)
    w.add_argument("--timeout", type=int, default=600)
    t = sub.add_parser("token")
    t.add_argument("--base", required=True)
    t.add_argument("--user", default="admin")
    t.add_argument("--password", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--base", required=True)
    m.add_argument("--token", required=True)
    m.add_argument("--cookie", required=True)
    m.add_argument("--pid", type=int, required=True)
    m.add_argument("--engine-pid", type=int, required=True)
    m.add_argument("--requests", type=int, default=300)
    m.add_argument("--warmup", type=int, default=20)
    m.add_argument("--clients", type=int, default=4)
    m.add_argument("--concurrent-requests", type=int, default=100, help="per client")
    m.add_argument("--concurrent-warmup", type=int, default=5, help="per client")
    m.add_argument("--engine-requests", type=int, default=100)
    m.add_argument("--engine-concurrent", action="store_true")
    r = sub.add_parser("report")
    r.add_argument("results")
    r.add_argument("service_ls")
    r.add_argument("memory")
    args = p.parse_args()
    {"create": create, "wait": wait, "token": token, "measure": measure, "report": report}[args.cmd](args)


if __name__ == "__main__":
    main()
