#!/usr/bin/env python3
"""Simulated agents for bench/server-usage.sh (issue 15's server numbers).

  prefill DB NODE SERVICE REPLICAS DAYS   30 days of thinned samples for one node and one
                                          service (its replicas on that node), written straight
                                          into the server's SQLite file before it starts
  ingest BASE SECRET NODES TASKS SECONDS PID FROM TO
                                          NODES simulated agents, each posting a report with
                                          one usage sample of TASKS task containers every 10 s
                                          (staggered over the 10 s), for SECONDS; prints JSON:
                                          reports sent/failed, the server's CPU over seconds
                                          FROM to TO of the run (the caller requests no page
                                          then), its VmRSS/VmHWM, post latency
  chart BASE TOKEN PATH N                 N sequential GETs of PATH; prints JSON with p50/p99 ms
"""
import http.client, json, os, random, sqlite3, sys, threading, time
from datetime import datetime, timezone, timedelta

def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

def node_id(n):
    return ("simnode%03d" % n).ljust(25, "a")

def tasks_of(n, count, t, service_of=None):
    out = []
    for i in range(count):
        svc = service_of(i) if service_of else "sim_svc%02d" % (i % 50)
        out.append({
            "task": "simtask%03d%03d" % (n, i) + "x" * 9,
            "service": svc, "stack": "sim", "slot": str(i + 1),
            "cpu_ns": int(t * 1e7) + i * 1000, "memory_bytes": (20 + i) << 20,
            "memory_limit_bytes": 256 << 20, "oom_kills": 0,
        })
    return out

def report(n, tasks, t):
    return {
        "node_id": node_id(n), "hostname": "sim-%03d" % n,
        "engine_version": "20.10.24", "reported_at": iso(t), "agent_version": "0.1.0",
        "interval_seconds": 10,
        "disk": {"filesystem": {"path": "/var/lib/docker", "capacity_bytes": 100 << 30,
                                "available_bytes": 60 << 30},
                 "usage_percent": 40, "used_bytes": 40 << 30, "image_count": 0,
                 "images_unique_bytes": 0, "images_shared_bytes": 0, "container_count": 0,
                 "containers_bytes": 0, "logs_bytes": 0, "volume_count": 0, "volumes_bytes": 0,
                 "build_cache_bytes": 0, "other_bytes": 0},
        "high_threshold_percent": 85, "low_threshold_percent": 80,
        "images": [], "gc_runs": [],
        "usage": [{"taken_at": iso(t),
                   "node": {"cpu_busy_ms": int(t * 100), "cpu_total_ms": int(t * 2000), "cpus": 2,
                            "memory_total_bytes": 8 << 30, "memory_available_bytes": 5 << 30},
                   "tasks": tasks}],
    }

def proc(pid):
    with open("/proc/%s/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    mem = {}
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                k, v = line.split(":")
                mem[k] = int(v.split()[0]) / 1024
    return cpu, mem

def prefill(db, node, service, replicas, days):
    now = time.time()
    times = []
    # The thinned history: 1 h at 10 s, 23 h at 1 min, the rest at 1 h.
    t = now
    while t > now - 3600: times.append(t); t -= 10
    while t > now - 86400: times.append(t); t -= 60
    while t > now - days * 86400: times.append(t); t -= 3600
    conn = sqlite3.connect(db)
    node_rows, task_rows = [], []
    for t in times:
        ms = int(t * 1000)
        node_rows.append((node, ms, int(t * 100), int(t * 2000), 2, 8 << 30, 5 << 30))
        for r in range(replicas):
            task_rows.append((node, ms, "prefill%02d" % r + "y" * 16, service, "sim", str(r + 1),
                              int(t * 1e7), (30 + r) << 20, 256 << 20, 0))
    conn.executemany("INSERT OR IGNORE INTO node_usage VALUES (?,?,?,?,?,?,?)", node_rows)
    conn.executemany("INSERT OR IGNORE INTO task_usage VALUES (?,?,?,?,?,?,?,?,?,?)", task_rows)
    conn.commit()
    print(json.dumps({"times": len(times), "node_rows": len(node_rows), "task_rows": len(task_rows)}))

def ingest(base, secret, nodes, tasks, seconds, pid, window_from, window_to):
    host, port = base.replace("http://", "").split(":")
    sent, failed, latencies, statuses = [0], [0], [], {}
    lock = threading.Lock()
    wall0 = time.time()
    stop = wall0 + seconds
    window = {}

    def measure():
        for mark, at in (("from", window_from), ("to", window_to)):
            delay = wall0 + at - time.time()
            if delay > 0: time.sleep(delay)
            window[mark] = (time.time(), proc(pid)[0], len(latencies))

    def agent(n):
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        next_at = wall0 + 10.0 * n / nodes
        while True:
            delay = next_at - time.time()
            if delay > 0: time.sleep(delay)
            if time.time() >= stop: break
            t = time.time()
            body = json.dumps(report(n, tasks_of(n, tasks, t), t)).encode()
            started = time.time()
            for attempt in (1, 2):
                try:
                    conn.request("POST", "/api/agent/report", body,
                                 {"Authorization": "Bearer " + secret, "Content-Type": "application/json"})
                    r = conn.getresponse(); r.read()
                    ok = r.status == 204
                    why = str(r.status)
                    break
                except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected) as e:
                    # The server closed an idle keep-alive connection: a real agent reconnects.
                    ok, why = False, type(e).__name__
                    conn = http.client.HTTPConnection(host, int(port), timeout=30)
                except Exception as e:
                    ok, why = False, type(e).__name__
                    conn = http.client.HTTPConnection(host, int(port), timeout=30)
                    break
            with lock:
                (sent if ok else failed)[0] += 1
                if not ok: statuses[why] = statuses.get(why, 0) + 1
                latencies.append(time.time() - started)
            next_at += 10.0

    monitor = threading.Thread(target=measure)
    monitor.start()
    threads = [threading.Thread(target=agent, args=(n,)) for n in range(nodes)]
    for th in threads: th.start()
    for th in threads: th.join()
    monitor.join()
    _, mem = proc(pid)
    (w0, c0, n0), (w1, c1, n1) = window["from"], window["to"]
    in_window = sorted(latencies[n0:n1])
    print(json.dumps({
        "reports_ok": sent[0], "reports_failed": failed[0], "failures": statuses,
        "window_s": round(w1 - w0, 1), "window_reports": n1 - n0,
        "server_cpu_s": round(c1 - c0, 2),
        "server_cpu_percent_of_core": round((c1 - c0) / (w1 - w0) * 100, 2),
        "post_p50_ms": round(in_window[len(in_window) // 2] * 1000, 1) if in_window else None,
        "post_p99_ms": round(in_window[int(len(in_window) * 0.99)] * 1000, 1) if in_window else None,
        "vmrss_mib": round(mem.get("VmRSS", 0), 1), "vmhwm_mib": round(mem.get("VmHWM", 0), 1),
    }))

def chart(base, token, path, n):
    host, port = base.replace("http://", "").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    times = []
    for i in range(n + 5):
        started = time.time()
        conn.request("GET", path, headers={"Authorization": "Bearer " + token})
        r = conn.getresponse(); body = r.read()
        if r.status != 200: sys.exit("GET %s: %s %s" % (path, r.status, body[:200]))
        if i >= 5: times.append((time.time() - started) * 1000)
    times.sort()
    print(json.dumps({"path": path, "n": n, "bytes": len(body),
                      "p50_ms": round(times[len(times) // 2], 1),
                      "p99_ms": round(times[int(len(times) * 0.99) - 1 if n >= 100 else -1], 1)}))

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "prefill": prefill(args[0], args[1], args[2], int(args[3]), int(args[4]))
    elif cmd == "ingest": ingest(args[0], args[1], int(args[2]), int(args[3]), float(args[4]), args[5],
                                 float(args[6]), float(args[7]))
    elif cmd == "chart": chart(args[0], args[1], args[2], int(args[3]))
    else: sys.exit(__doc__)
