#!/usr/bin/env python3
"""The server's live logs, end to end: engine -> `swarmkeeper server` -> server-sent events.

Starts `swarmkeeper server` on a free local port with a fresh state directory, logs in as the
first admin (from SWARMKEEPER_ADMIN_PASSWORD), and on the host's single-node swarm:

1. backlog: a service (driver `local`) prints `seq 1 LINES` and stays up. Once every line is
   in its log, the whole log is read (`tail=all`, not followed) from the engine's socket
   directly (the ceiling), through `/api/services/S/logs` (without and with timestamps) and
   through `/logs/download`. Each read must deliver exactly LINES lines ending with LINES.
2. live: a second such service waits until a client follows it (`tail=all`, timestamps on),
   then prints `seq 1 LINES` as fast as it can; the client counts lines until the last one.
   The engine's timestamps of the first and last line say how fast the task wrote them; the
   client's clock says how fast they came out of the server.
3. followers: FOLLOWERS clients follow a service that prints `n 0` ... `n TOTAL-1` in bursts
   of BURST lines every 0.1 s (about 1,000 lines/s for about 10 s by default); each client
   checks that it received every number once, in order.

Throughout, the server's VmRSS is sampled every 0.1 s; VmHWM (its peak) is read at the end,
with its CPU time per phase. After each phase, once the clients are gone, the server's open
sockets are counted again: the engine connections of the streams must be closed.

Usage: bench/log_stream.py   (as root or a docker group member, after scripts/ensure-engine.sh
       and `cargo build --release -p swarmkeeper-cli`)
Env:   SWARMKEEPER (default target/release/swarmkeeper), LINES (1000000), FOLLOWERS (20),
       TOTAL (10000), BURST (100), BENCH_KEEP=1 keeps the temporary folder (server log).
Needs: docker CLI, /bin/busybox (busybox-static), python3. Takes: about 2 minutes.
Progress goes to stderr, the figures to stdout.
"""

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "lib"))
from engine import _UnixConnection, socket_path  # noqa: E402

SK = os.environ.get("SWARMKEEPER", os.path.join(REPO, "target/release/swarmkeeper"))
LINES = int(os.environ.get("LINES", "1000000"))
FOLLOWERS = int(os.environ.get("FOLLOWERS", "20"))
TOTAL = int(os.environ.get("TOTAL", "10000"))
BURST = int(os.environ.get("BURST", "100"))
PASSWORD = "bench-password-" + os.urandom(6).hex()
PREFIX = f"skbench-logs-{os.getpid()}"


def progress(message):
    print(f"[log_stream] {message}", file=sys.stderr, flush=True)


def docker(*args):
    out = subprocess.run(["docker", *args], capture_output=True, text=True,
                         env={**os.environ, "DOCKER_BUILDKIT": "0"})
    if out.returncode != 0:
        raise SystemExit(f"docker {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp):
        self.port = free_port()
        self.log = open(os.path.join(tmp, "server.log"), "wb")
        env = {**os.environ, "SWARMKEEPER_ADMIN_PASSWORD": PASSWORD, "RUST_LOG": "warn"}
        self.proc = subprocess.Popen(
            [SK, "server", "--listen", f"127.0.0.1:{self.port}",
             "--state-dir", os.path.join(tmp, "state"),
             "--admin-password-file", os.path.join(tmp, "no-such-file")],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 30
        while True:
            try:
                status, _, _ = self.request("GET", "/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"the server did not start; see {self.log.name}")
            time.sleep(0.1)
        status, headers, body = self.request(
            "POST", "/login",
            urllib.parse.urlencode({"username": "admin", "password": PASSWORD, "next": "/"}),
            {"Content-Type": "application/x-www-form-urlencoded"})
        cookie = headers.get("set-cookie", "")
        if status != 303 and status != 302 or not cookie:
            raise SystemExit(f"login failed: HTTP {status} {body[:200]!r}")
        self.cookie = cookie.split(";", 1)[0]

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def open(self, path, timeout=120):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        conn.request("GET", path, headers={"Cookie": self.cookie})
        resp = conn.getresponse()
        if resp.status != 200:
            raise SystemExit(f"GET {path}: HTTP {resp.status} {resp.read()[:300]!r}")
        return conn, resp

    def status(self):
        fields = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        return fields

    def rss_mib(self, field="VmRSS"):
        return int(self.status()[field].split()[0]) / 1024

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")

    def sockets(self):
        count = 0
        for fd in os.listdir(f"/proc/{self.proc.pid}/fd"):
            try:
                if os.readlink(f"/proc/{self.proc.pid}/fd/{fd}").startswith("socket:"):
                    count += 1
            except OSError:
                pass
        return count

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


class RssSampler(threading.Thread):
    def __init__(self, server):
        super().__init__(daemon=True)
        self.server = server
        self.peak = 0.0
        self.running = True

    def run(self):
        while self.running:
            try:
                self.peak = max(self.peak, self.server.rss_mib())
            except (OSError, KeyError):
                return
            time.sleep(0.1)

    def take(self):
        peak, self.peak = self.peak, 0.0
        return peak


def read_stream(resp, on_data=None, stop=None):
    """Reads an event stream to its `end` event or its close (or, between two events, until
    `stop(count)`), counting `data:` lines. `on_data(chunk)` sees the raw bytes. Returns
    (lines, when the first line came, seconds, whether it ended with `end`)."""
    needle = b"\ndata: {"
    tail = b"\n"
    recent = b""
    count = 0
    first = None
    start = time.perf_counter()
    while True:
        chunk = resp.read1(1 << 20)
        if not chunk:
            break
        if first is None and b"data: " in chunk:
            first = time.perf_counter()
        window = tail + chunk
        count += window.count(needle)
        tail = window[-(len(needle) - 1):]
        recent = (recent + chunk[-256:])[-256:]
        if on_data:
            on_data(chunk)
        if stop and recent.endswith(b"\n\n") and stop(count):
            break
    return count, first, time.perf_counter() - start, b"\nevent: end\n" in recent


class Rolling:
    """The first and the last few KiB of a stream."""

    def __init__(self):
        self.head = b""
        self.last = b""

    def __call__(self, chunk):
        if len(self.head) < 8192:
            self.head += chunk[:8192]
        self.last = (self.last + chunk[-8192:])[-8192:]


def data_lines(buffer):
    """The complete `data:` lines of a piece of a stream, as JSON."""
    lines = buffer.split(b"\n")[1:-1]  # the first and the last may be cut
    return [json.loads(l[6:]) for l in lines if l.startswith(b"data: {")]


def create_service(name, image, script, driver="local"):
    docker("service", "create", "--detach", "--quiet", "--name", name,
           "--log-driver", driver, "--log-opt", "max-size=1g",
           "--restart-condition", "none", "--stop-grace-period", "1s",
           image, "/bin/busybox", "sh", "-c", script)


def wait_running(name, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = docker("service", "ps", "--filter", "desired-state=running",
                     "--format", "{{.CurrentState}}", name)
        if out.startswith("Running"):
            return
        time.sleep(0.3)
    raise SystemExit(f"{name} did not start")


def engine_logs(service_id, query):
    conn = _UnixConnection(socket_path(), timeout=300)
    conn.request("GET", f"/v1.41/services/{service_id}/logs?{query}")
    return conn, conn.getresponse()


def wait_logged(service_id, last):
    """Until the service's last log line is `last`."""
    deadline = time.time() + 300
    while time.time() < deadline:
        conn, resp = engine_logs(service_id, "stdout=1&stderr=1&tail=1")
        data = resp.read()
        conn.close()
        if data.rstrip(b"\n").endswith(str(last).encode()):
            return
        time.sleep(0.5)
    raise SystemExit("the service did not finish logging")


def mib(n):
    return f"{n:.1f} MiB"


def main():
    if not os.access(SK, os.X_OK):
        raise SystemExit(f"{SK} not found: cargo build --release -p swarmkeeper-cli")
    tmp = tempfile.mkdtemp(prefix="sk-log-bench-")
    image = f"{PREFIX}:1"
    services = []
    server = None
    figures = []

    def figure(text):
        figures.append(text)
        print(text, flush=True)

    try:
        ctx = os.path.join(tmp, "image")
        os.mkdir(ctx)
        shutil.copy("/bin/busybox", os.path.join(ctx, "busybox"))
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write("FROM scratch\nCOPY busybox /bin/busybox\n")
        docker("build", "-q", "-t", image, ctx)

        server = Server(tmp)
        sampler = RssSampler(server)
        sampler.start()
        idle_sockets = server.sockets()
        figure(f"server: {SK} (pid {server.proc.pid}), idle VmRSS {mib(server.rss_mib())}, "
               f"{idle_sockets} open sockets")
        sampler.take()

        # 1. The backlog.
        fast = f"{PREFIX}-fast"
        create_service(fast, image, f"seq 1 {LINES}; exec sleep 3600")
        services.append(fast)
        fast_id = docker("service", "inspect", "--format", "{{.ID}}", fast)
        progress(f"{fast}: waiting for {LINES} lines to be logged")
        wait_logged(fast_id, LINES)

        conn, resp = engine_logs(fast_id, "stdout=1&stderr=1&details=1&timestamps=1&tail=all")
        start = time.perf_counter()
        raw_bytes = 0
        raw_lines = 0
        while True:
            chunk = resp.read1(1 << 20)
            if not chunk:
                break
            raw_bytes += len(chunk)
            raw_lines += chunk.count(b"\n")
        raw_seconds = time.perf_counter() - start
        conn.close()
        figure(f"backlog, engine socket directly (the ceiling): {raw_lines} lines in "
               f"{raw_seconds:.2f} s = {raw_lines / raw_seconds:,.0f} lines/s")

        for label, query in (("SSE", "tail=all&follow=false"),
                             ("SSE with timestamps", "tail=all&follow=false&timestamps=1")):
            cpu = server.cpu_seconds()
            seen = Rolling()
            conn, resp = server.open(f"/api/services/{fast}/logs?{query}")
            count, _, seconds, ended = read_stream(resp, seen)
            conn.close()
            cpu = server.cpu_seconds() - cpu
            final = data_lines(seen.last)[-1]
            ok = count == LINES and ended and final and final["text"] == str(LINES)
            figure(f"backlog, {label}: {count} lines in {seconds:.2f} s = "
                   f"{count / seconds:,.0f} lines/s; server CPU {cpu:.2f} s; "
                   f"{'complete' if ok else 'INCOMPLETE: last line ' + repr(final)}")

        cpu = server.cpu_seconds()
        conn, resp = server.open(f"/api/services/{fast}/logs/download?tail=all")
        start = time.perf_counter()
        count = 0
        last = b""
        while True:
            chunk = resp.read1(1 << 20)
            if not chunk:
                break
            count += chunk.count(b"\n")
            last = (last + chunk)[-200:]
        seconds = time.perf_counter() - start
        conn.close()
        cpu = server.cpu_seconds() - cpu
        ok = count == LINES and last.rstrip(b"\n").endswith(f"| {LINES}".encode())
        figure(f"backlog, download: {count} lines in {seconds:.2f} s = {count / seconds:,.0f} "
               f"lines/s; server CPU {cpu:.2f} s; {'complete' if ok else 'INCOMPLETE'}")
        docker("service", "rm", fast)
        services.remove(fast)
        figure(f"peak VmRSS during the backlog reads: {mib(sampler.take())}")

        # 2. Live: the client follows before the first line is written.
        live = f"{PREFIX}-live"
        create_service(live, image, f"sleep 5; seq 1 {LINES}; exec sleep 3600")
        services.append(live)
        wait_running(live)
        cpu = server.cpu_seconds()
        conn, resp = server.open(f"/api/services/{live}/logs?tail=all&timestamps=1")
        seen = Rolling()
        count, first, seconds, _ = read_stream(resp, seen, stop=lambda n: n >= LINES)
        arrived = time.perf_counter()
        conn.close()
        cpu = server.cpu_seconds() - cpu
        first_line = data_lines(b"\n" + seen.head)[0]
        final = data_lines(seen.last)[-1]
        produced = (parse_time(final["time"]) - parse_time(first_line["time"]))
        delivered = arrived - first
        ok = count == LINES and final["text"] == str(LINES) and first_line["text"] == "1"
        figure(f"live, one follower: {count} lines; the task wrote them in {produced:.2f} s "
               f"({count / produced:,.0f} lines/s), the client had them in {delivered:.2f} s "
               f"({count / delivered:,.0f} lines/s); server CPU {cpu:.2f} s; "
               f"{'complete' if ok else 'INCOMPLETE'}")
        docker("service", "rm", live)
        services.remove(live)
        figure(f"peak VmRSS during the live run: {mib(sampler.take())}")

        # 3. Followers.
        numbered = f"{PREFIX}-numbered"
        script = ("sleep 8; i=0; while [ $i -lt %d ]; do j=0; while [ $j -lt %d ]; do "
                  "echo \"n $i\"; i=$((i+1)); j=$((j+1)); done; usleep 100000; done; "
                  "exec sleep 3600") % (TOTAL, BURST)
        create_service(numbered, image, script)
        services.append(numbered)
        wait_running(numbered)
        results = [None] * FOLLOWERS
        connected = threading.Barrier(FOLLOWERS + 1, timeout=60)

        def follow(k):
            conn, resp = server.open(f"/api/services/{numbered}/logs?tail=all&timestamps=1")
            connected.wait()
            expected = 0
            gaps = duplicates = 0
            buffer = b""
            times = []
            while expected < TOTAL:
                chunk = resp.read1(1 << 16)
                if not chunk:
                    break
                buffer += chunk
                lines = buffer.split(b"\n")
                buffer = lines.pop()
                for line in lines:
                    if not line.startswith(b"data: "):
                        continue
                    entry = json.loads(line[6:])
                    n = int(entry["text"].split()[1])
                    if n < expected:
                        duplicates += 1
                    else:
                        gaps += n - expected
                        expected = n + 1
                    if n == 0 or n == TOTAL - 1:
                        times.append(entry["time"])
            received = time.perf_counter()
            conn.close()
            results[k] = (expected, gaps, duplicates, times, received)

        threads = [threading.Thread(target=follow, args=(k,)) for k in range(FOLLOWERS)]
        cpu = server.cpu_seconds()
        for t in threads:
            t.start()
        connected.wait()
        progress(f"{FOLLOWERS} followers connected, {server.sockets()} server sockets")
        for t in threads:
            t.join(120)
        cpu = server.cpu_seconds() - cpu
        complete = [r for r in results if r and r[0] == TOTAL and r[1] == 0 and r[2] == 0]
        times = next((r[3] for r in results if r and len(r[3]) == 2), None)
        rate = ""
        if times:
            span = parse_time(times[1]) - parse_time(times[0])
            rate = f" (written over {span:.1f} s, {TOTAL / span:,.0f} lines/s)"
        figure(f"{FOLLOWERS} followers of {TOTAL} numbered lines{rate}: {len(complete)} of "
               f"{FOLLOWERS} received every line once and in order; gaps "
               f"{sum(r[1] for r in results if r)}, duplicates {sum(r[2] for r in results if r)}; "
               f"server CPU {cpu:.2f} s")
        figure(f"peak VmRSS with {FOLLOWERS} followers: {mib(sampler.take())}")
        docker("service", "rm", numbered)
        services.remove(numbered)

        time.sleep(2)
        after = server.sockets()
        figure(f"open sockets after the clients left: {after} (idle: {idle_sockets}): "
               f"{'every engine stream closed' if after <= idle_sockets else 'LEAK'}")
        figure(f"server VmHWM (peak resident memory over the whole run): "
               f"{mib(server.rss_mib('VmHWM'))}")
        sampler.running = False
    finally:
        for name in services:
            subprocess.run(["docker", "service", "rm", name], capture_output=True)
        if server:
            server.stop()
        time.sleep(2)
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True)
        if os.environ.get("BENCH_KEEP") == "1":
            progress(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def parse_time(text):
    """Seconds since the epoch from the engine's RFC 3339 time with nanoseconds."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$", text)
    if not match:
        raise ValueError(text)
    whole = datetime.strptime(match.group(1) + "+0000", "%Y-%m-%dT%H:%M:%S%z").timestamp()
    return whole + float("0." + (match.group(2) or "0"))


if __name__ == "__main__":
    main()
