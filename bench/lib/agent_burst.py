#!/usr/bin/env python3
"""The agent's memory and catch-up time around a burst of engine events.

    agent_burst.py --agent BIN --state-dir DIR --prefix bench/n --images 1000 [--events 10000]

Expects the engine at $DOCKER_HOST to hold images PREFIX:0 .. PREFIX:(images-1). Starts
`BIN agent` with thresholds that delete nothing (--high-threshold 100 --low-threshold 99
--min-age 1h --interval 1h: only the events make it act), waits for its startup pass, then
sends the burst from several threads, each with its own connection to the engine:

  - image `tag` + `untag` pairs: POST /images/PREFIX:i/tag?repo=bench/alias&tag=K, then
    DELETE /images/bench/alias:K (the image keeps its own tag, so only an untag event);
  - container `create` + `destroy` pairs (create, then DELETE) from PREFIX:i;
  - a few full runs (`create`, `start`, `die`, `destroy`) of `busybox true`;

then one `create` + `destroy` of a marker container from PREFIX:(images-1), an image no
other event names. The agent handles events in order, so once the state database shows a
last-used time for the marker image, it has worked through the whole burst. A follower of the
engine's /events of our own counts the events actually emitted (the engine keeps only its
last 256 events for `since`/`until` queries, so they cannot be counted afterwards).

Without --agent, only the burst is sent: the engine's time and CPU without an agent, as a
baseline. Prints one JSON object.
"""

import argparse
import concurrent.futures
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine import Engine  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmHWM:", "VmRSS:", "RssAnon:", "RssFile:")):
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0])
    return out


def smaps(pid, binary):
    """Resident KiB (and of it anonymous: written pages) per kind of mapping, from
    /proc/PID/smaps: the binary's code, read-only data and writable data, the heap, and the
    rest (thread stacks, mmap'ed blocks). The binary is the one the process runs (a wrapper
    given as --agent may have exec'ed it)."""
    try:
        binary = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        binary = os.path.realpath(binary)
    out = {}
    kind = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                perms, path = head[1], head[5] if len(head) > 5 else ""
                if path == binary:
                    kind = {"r-xp": "binary code", "r--p": "binary read-only"}.get(perms, "binary writable")
                elif path == "[heap]":
                    kind = "heap"
                else:
                    kind = "other"
            elif head and head[0] in ("Rss:", "Anonymous:"):
                entry = out.setdefault(kind, {"Rss": 0, "Anonymous": 0})
                entry[head[0][:-1]] += int(head[1])
    return out


def code_pages(pid):
    """The pages of the binary's code mapping that are resident in the process now, as offsets
    in the binary's file (multiples of the page size), from /proc/PID/maps and
    /proc/PID/pagemap (bit 63: present; root reads it). With the code registered with a
    userfaultfd (crates/agent/src/advice.rs: one page per fault) these are the pages the agent
    ran since its start-up advice."""
    binary = os.readlink(f"/proc/{pid}/exe")
    page = os.sysconf("SC_PAGE_SIZE")
    out = []
    with open(f"/proc/{pid}/maps") as f:
        maps = [line.split() for line in f]
    with open(f"/proc/{pid}/pagemap", "rb") as pm:
        for head in maps:
            if len(head) < 6 or head[5] != binary or head[1] != "r-xp":
                continue
            start, end = (int(x, 16) for x in head[0].split("-"))
            offset = int(head[2], 16)
            pm.seek(start // page * 8)
            entries = pm.read((end - start) // page * 8)
            for i in range(len(entries) // 8):
                entry = int.from_bytes(entries[8 * i:8 * i + 8], "little")
                if entry >> 63:
                    out.append(offset + i * page)
    return out


class ReportReceiver(threading.Thread):
    """Answers every agent report with 200, so that the agents run their reporting path (the
    report built, serialised and posted) as with `--server`; keeps nothing."""

    def __init__(self):
        super().__init__(daemon=True)
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def run(self):
        self.httpd.serve_forever()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def metrics(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        m = re.match(r'^swarmkeeper_gc_runs_total\{trigger="([^"]+)"\} (\S+)$', line)
        if m:
            out[m.group(1)] = int(float(m.group(2)))
    return out


def last_used(db, image_id):
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute("SELECT last_used FROM images WHERE id = ?", (image_id,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return row[0] if row else None


class EventCounter(threading.Thread):
    """Follows the engine's /events (as the agent does) and counts image and container events
    by action until the marker container's `destroy`."""

    def __init__(self):
        super().__init__(daemon=True)
        self.counts = {}
        self.marker = None
        self.done = threading.Event()
        self.ready = threading.Event()

    def run(self):
        e = Engine()
        flt = urllib.parse.quote(json.dumps({"type": ["container", "image"]}))
        e.conn.request("GET", f"{e.prefix}/events?filters={flt}")
        resp = e.conn.getresponse()
        self.ready.set()
        while True:
            line = resp.readline()
            if not line:
                break
            if not line.strip():
                continue
            ev = json.loads(line)
            key = f"{ev.get('Type')}/{ev.get('Action')}"
            self.counts[key] = self.counts.get(key, 0) + 1
            if key == "container/destroy" and self.marker and ev.get("id") == self.marker:
                break
        self.done.set()
        e.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def send_burst(a, plan, marker, engine_pid):
    """Sends the planned events, then the marker; returns (seconds, engine CPU seconds, event
    counter)."""
    local = threading.local()

    def one(item):
        kind, k = item
        if not hasattr(local, "e"):
            local.e = Engine()
        en = local.e
        image = f"{a.prefix}:{k % (a.images - 1)}"
        if kind == "tag":
            en.tag(image, "bench/alias", str(k))
            en.untag(f"bench/alias:{k}")
        elif kind == "container":
            en.remove(en.create(image, ["/bin/busybox", "true"]))
        else:
            cid = en.create(image, ["/bin/busybox", "true"])
            en.start(cid)
            en.wait(cid)
            en.remove(cid)

    counter = EventCounter()
    counter.start()
    counter.ready.wait(10)
    engine_cpu0 = cpu_seconds(engine_pid) if engine_pid else None
    b0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(a.workers) as pool:
        list(pool.map(one, plan, chunksize=16))
    en = Engine()
    cid = en.create(marker, ["/bin/busybox", "true"])
    counter.marker = cid
    en.remove(cid)
    en.close()
    took = time.monotonic() - b0
    engine_cpu = cpu_seconds(engine_pid) - engine_cpu0 if engine_pid else None
    return took, engine_cpu, counter


def one_burst(a, plan, marker, marker_id, agents):
    """One burst against the running agents: each one's memory before, right after and `settle`
    s after, how long until it recorded the marker's use and went idle, its CPU time and GC
    passes. Returns (one dict per agent, the burst's own figures)."""
    outs = []
    for ag in agents:
        outs.append({
            "before": status(ag["pid"]), "cpu_before": cpu_seconds(ag["pid"]),
            "runs_before": metrics(ag["port"]), "marker_before": last_used(ag["db"], marker_id),
        })

    # Peak VmRSS during the burst and the catch-up, sampled every 50 ms.
    sampling = threading.Event()

    def sampler():
        while not sampling.is_set():
            for ag, out in zip(agents, outs):
                try:
                    out["peak_vmrss_sampled"] = max(out.get("peak_vmrss_sampled", 0),
                                                    status(ag["pid"])["VmRSS"])
                except OSError:
                    return
            time.sleep(0.05)

    threading.Thread(target=sampler, daemon=True).start()
    took, engine_cpu, counter = send_burst(a, plan, marker, a.engine_pid)
    b1 = time.monotonic()
    for ag, out in zip(agents, outs):
        out["right_after"] = status(ag["pid"])
        out["caught_up_s"] = out["cpu_idle_after_s"] = None
        out["last_cpu"], out["last_change"] = cpu_seconds(ag["pid"]), time.monotonic()

    # Catching up: the marker's use recorded, then the agent's CPU at rest for 1 s.
    pending = list(zip(agents, outs))
    while pending and time.monotonic() < b1 + 120:
        now = time.monotonic()
        for ag, out in list(pending):
            if out["caught_up_s"] is None:
                used = last_used(ag["db"], marker_id)
                before = out["marker_before"]
                if used is not None and (before is None or used > before):
                    out["caught_up_s"] = now - b1
            c = cpu_seconds(ag["pid"])
            if c != out["last_cpu"]:
                out["last_cpu"], out["last_change"] = c, now
            elif now - out["last_change"] >= 1.0 and out["caught_up_s"] is not None:
                out["cpu_idle_after_s"] = out["last_change"] - b1
                pending.remove((ag, out))
        time.sleep(0.02)
    sampling.set()
    for ag, out in zip(agents, outs):
        out["agent_cpu_s"] = cpu_seconds(ag["pid"]) - out.pop("cpu_before")
        runs_after = metrics(ag["port"])
        runs_before = out.pop("runs_before")
        out["gc_runs"] = {k: runs_after.get(k, 0) - runs_before.get(k, 0) for k in runs_after}
        for k in ("marker_before", "last_cpu", "last_change"):
            out.pop(k)
    while time.monotonic() < b1 + a.settle:
        time.sleep(0.1)
    burst = {"burst_s": took, "settle_s": a.settle}
    if engine_cpu is not None:
        burst["engine_cpu_s_during_burst"] = engine_cpu
    counter.done.wait(30)
    burst["engine_events"] = dict(sorted(counter.counts.items()))
    burst["engine_events_total"] = sum(counter.counts.values())
    for ag, out in zip(agents, outs):
        out["after_settle"] = status(ag["pid"])
        out.update(burst)
    return outs


def set_page_cache(binary, cache):
    """Puts the binary's file in the page cache as the agent would find it: "warm", all of it
    cached (just built, copied, or extracted by `docker pull`); "cold", none of it cached that
    no process maps (a node where it has not run since a reboot or since memory pressure);
    "as-is", untouched."""
    if cache == "as-is":
        return
    with open(binary, "rb") as f:
        if cache == "warm":
            while f.read(1 << 20):
                pass
        else:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def start_agent(binary, state_dir, log, report_to=None):
    port = free_port()
    extra = []
    if report_to:
        secret = os.path.join(state_dir, "report-secret")
        with open(secret, "w") as f:
            f.write("bench-report-secret-0123456789abcdef\n")
        extra = ["--server", report_to, "--report-secret-file", secret]
    agent = subprocess.Popen(
        [binary, "agent", "--listen", f"127.0.0.1:{port}", "--state-dir", state_dir,
         "--interval", "1h", "--min-age", "1h", "--high-threshold", "100", "--low-threshold", "99",
         *extra],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return {"binary": binary, "proc": agent, "pid": agent.pid, "port": port,
            "db": os.path.join(state_dir, "swarmkeeper.db")}


# The agent's service in deploy/swarmkeeper.yml, as `docker run` options on the host engine
# (the engine at /var/run/docker.sock: its data root is a disk, as on a node; the lab engine
# the agent watches is mounted in its place). Docker's default seccomp profile, as for a Swarm
# service. Differences: the host's network instead of the stack's overlay (the metrics port and
# the report receiver on 127.0.0.1), and the state directory bound from the bench's folder
# instead of a named volume (the bench reads the state database).
HOST_DOCKER = ["docker", "-H", "unix:///var/run/docker.sock"]


def start_container(image, state_dir, report_to, name):
    port = free_port()
    lab = os.environ["DOCKER_HOST"].removeprefix("unix://")
    data_root = Engine().request("GET", "/info")["DockerRootDir"]
    env = {
        "SWARMKEEPER_HIGH_THRESHOLD": "100", "SWARMKEEPER_LOW_THRESHOLD": "99",
        "SWARMKEEPER_MIN_AGE": "1h", "SWARMKEEPER_INTERVAL": "1h",
        "SWARMKEEPER_STATS_INTERVAL": "10s", "SWARMKEEPER_CGROUP_ROOT": "/host/sys/fs/cgroup",
        "SWARMKEEPER_PROC_ROOT": "/host/proc", "SWARMKEEPER_LOG": "info",
        "SWARMKEEPER_STATE_DIR": "/var/lib/swarmkeeper", "SWARMKEEPER_LISTEN": f"127.0.0.1:{port}",
    }
    mounts = [
        f"type=bind,source={lab},target=/var/run/docker.sock",
        f"type=bind,source={data_root},target={data_root},readonly",
        "type=bind,source=/sys/fs/cgroup,target=/host/sys/fs/cgroup,readonly",
        "type=bind,source=/proc,target=/host/proc,readonly",
        f"type=bind,source={os.path.abspath(state_dir)},target=/var/lib/swarmkeeper",
    ]
    if report_to:
        with open(os.path.join(state_dir, "report-secret"), "w") as f:
            f.write("bench-report-secret-0123456789abcdef\n")
        env["SWARMKEEPER_SERVER"] = report_to
        env["SWARMKEEPER_REPORT_SECRET_FILE"] = "/var/lib/swarmkeeper/report-secret"
    cmd = [*HOST_DOCKER, "run", "-d", "--name", name, "--network", "host", "--read-only",
           "--tmpfs", "/tmp:size=16777216", "--label", "swarmkeeper.agent=true",
           "--log-driver", "local", "--log-opt", "max-size=10m", "--log-opt", "max-file=3",
           "--health-cmd", "/swarmkeeper healthcheck", "--health-interval", "10s",
           "--health-timeout", "5s", "--health-retries", "3", "--health-start-period", "10s",
           "--stop-timeout", "20"]
    for k, v in env.items():
        cmd += ["-e", f"{k}={v}"]
    for m in mounts:
        cmd += ["--mount", m]
    cid = subprocess.run([*cmd, image, "agent"], check=True, capture_output=True,
                         text=True).stdout.strip()
    pid = int(subprocess.run([*HOST_DOCKER, "inspect", "-f", "{{.State.Pid}}", cid], check=True,
                             capture_output=True, text=True).stdout)
    return {"binary": image, "container": cid, "proc": None, "pid": pid, "port": port,
            "db": os.path.join(state_dir, "swarmkeeper.db")}


def container_memory(cid):
    """The container's memory cgroup: peak and current usage (v1 or v2), bytes."""
    pid = subprocess.run([*HOST_DOCKER, "inspect", "-f", "{{.State.Pid}}", cid], check=True,
                         capture_output=True, text=True).stdout.strip()
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.strip().split(":", 2)
            if controllers == "":
                base = f"/sys/fs/cgroup{path}"
                files = {"peak": "memory.peak", "current": "memory.current"}
            elif "memory" in controllers.split(","):
                base = f"/sys/fs/cgroup/memory{path}"
                files = {"peak": "memory.max_usage_in_bytes", "current": "memory.usage_in_bytes"}
            else:
                continue
            for k, name in files.items():
                try:
                    with open(os.path.join(base, name)) as g:
                        out[k] = int(g.read())
                except OSError:
                    pass
    return out


def stop_agent(ag):
    if ag.get("container"):
        cid = ag["container"]
        subprocess.run([*HOST_DOCKER, "stop", "-t", "20", cid], capture_output=True)
        code = subprocess.run([*HOST_DOCKER, "inspect", "-f", "{{.State.ExitCode}}", cid],
                              capture_output=True, text=True).stdout.strip()
        subprocess.run([*HOST_DOCKER, "rm", "-f", cid], capture_output=True)
        return int(code) if code.isdigit() else None
    agent = ag["proc"]
    if agent.poll() is None:
        os.killpg(ag["pid"], signal.SIGTERM)
        try:
            agent.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(ag["pid"], signal.SIGKILL)
            agent.wait()
    return agent.returncode


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--agent", action="append", default=[],
                   help="a swarmkeeper binary (repeat: side by side, each an agent of its own); without"
                        " it, only the burst (a baseline)")
    p.add_argument("--state-dir")
    p.add_argument("--prefix", required=True)
    p.add_argument("--images", type=int, required=True)
    p.add_argument("--events", type=int, default=10000)
    p.add_argument("--runs", type=int, default=100, help="full container runs (4 events each)")
    p.add_argument("--container-share", type=float, default=0.6,
                   help="share of the other events that are container create/destroy")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--settle", type=float, default=10)
    p.add_argument("--bursts", type=int, default=1, help="bursts in a row against the same agent")
    p.add_argument("--log", default=os.devnull)
    p.add_argument("--engine-pid", type=int, help="dockerd's pid, to report its CPU time")
    p.add_argument("--pidfile", help="write the agents' pids here (removed when they are stopped)")
    p.add_argument("--cache", choices=("warm", "cold", "as-is"), default="warm",
                   help="each binary's page cache when its agent starts (see set_page_cache)")
    p.add_argument("--code-pages", help="write the first agent's resident code pages here at the end"
                                        " (file offsets, one per line; see code_pages)")
    p.add_argument("--container", action="append", default=[], metavar="IMAGE",
                   help="an agent in a container of IMAGE on the host engine, run as the stack"
                        " file runs it (see start_container), side by side with the --agent ones")
    p.add_argument("--report", action="store_true",
                   help="the agents report to a receiver that answers 200 (their --server path)")
    a = p.parse_args()

    # The event mix.
    rest = a.events - 4 * a.runs - 2  # the marker's create + destroy
    container_pairs = int(rest * a.container_share) // 2
    tag_pairs = (rest - 2 * container_pairs) // 2
    plan = ([("tag", k) for k in range(tag_pairs)] + [("container", k) for k in range(container_pairs)]
            + [("run", k) for k in range(a.runs)])
    random.Random(7).shuffle(plan)
    marker = f"{a.prefix}:{a.images - 1}"
    out = {"events_planned": a.events, "tag_pairs": tag_pairs, "container_pairs": container_pairs,
           "runs": a.runs, "images": a.images, "agent": bool(a.agent)}

    if not a.agent and not a.container:
        took, engine_cpu, counter = send_burst(a, plan, marker, a.engine_pid)
        counter.done.wait(30)
        out["bursts"] = [{
            "burst_s": took, "engine_cpu_s_during_burst": engine_cpu,
            "engine_events": dict(sorted(counter.counts.items())),
            "engine_events_total": sum(counter.counts.values()),
        }]
        print(json.dumps(out))
        return

    e = Engine()
    marker_id = e.request("GET", f"/images/{urllib.parse.quote(marker, safe='')}/json")["Id"]
    e.close()
    log = open(a.log, "wb")
    report_to = None
    if a.report:
        receiver = ReportReceiver()
        receiver.start()
        report_to = receiver.url
    agents = []
    try:
        # Several binaries run side by side on the same node and see the same bursts; each
        # has a state directory of its own.
        for i, binary in enumerate(a.agent):
            state_dir = a.state_dir if len(a.agent) == 1 else os.path.join(a.state_dir, str(i))
            os.makedirs(state_dir, exist_ok=True)
            set_page_cache(binary, a.cache)
            agents.append(start_agent(binary, state_dir, log, report_to))
            if a.pidfile:
                ag = agents[-1]
                ag["pidfile"] = a.pidfile if i == 0 else f"{os.path.splitext(a.pidfile)[0]}-{i}.pid"
                with open(ag["pidfile"], "w") as f:
                    f.write(f"{ag['pid']}\n")
        for i, image in enumerate(a.container):
            state_dir = os.path.join(a.state_dir, f"container-{i}")
            os.makedirs(state_dir, exist_ok=True)
            agents.append(start_container(image, state_dir, report_to,
                                          f"skbench-agent-{os.environ.get('BENCH_RUN', os.getpid())}-{i}"))
        t0 = time.monotonic()
        for ag in agents:
            while metrics(ag["port"]).get("startup", 0) < 1:
                if ag["proc"] is not None and ag["proc"].poll() is not None:
                    raise SystemExit(f"the agent exited with {ag['proc'].returncode}; see {a.log}")
                if time.monotonic() - t0 > 60:
                    raise SystemExit("the agent's startup pass did not finish in 60 s")
                time.sleep(0.05)
            ag["out"] = {"binary": ag["binary"], "startup_pass_s": time.monotonic() - t0,
                         "bursts": []}
        time.sleep(2)
        for ag in agents:
            ag["out"]["before"] = status(ag["pid"])

        for _ in range(a.bursts):
            for ag, burst in zip(agents, one_burst(a, plan, marker, marker_id, agents)):
                ag["out"]["bursts"].append(burst)
        if a.code_pages:
            with open(a.code_pages, "w") as f:
                f.writelines(f"{off}\n" for off in code_pages(agents[0]["pid"]))
        for ag in agents:
            ag["out"]["smaps"] = smaps(ag["pid"], ag["binary"])
            ag["out"]["end"] = status(ag["pid"])
            if ag.get("container"):
                ag["out"]["cgroup"] = container_memory(ag["container"])
    finally:
        for ag in agents:
            code = stop_agent(ag)
            if "out" in ag:
                ag["out"]["agent_exit"] = code
            if "pidfile" in ag:
                os.unlink(ag["pidfile"])
    out["agents"] = [ag["out"] for ag in agents]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
