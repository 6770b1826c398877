"""Driver of bench/autodeploy-latency.sh: push -> rollout started -> running on every node, on a
multi-node lab (lab/lab.sh), through the registry's notifications and through polling at the
default interval. Standard library only; run as root."""

import argparse
import base64
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from server_services import connect, login  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LAB = os.path.join(REPO, "lab", "lab.sh")
USER = "bench"
SERVICE = "adlat"


def say(text):
    print(f"bench: {text}", file=sys.stderr, flush=True)


def run(args, env=None, check=True, stdin=None):
    out = subprocess.run(args, env=env, input=stdin, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: exit {out.returncode}: {out.stderr.strip()[-500:]}")
    return out.stdout.strip()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="sk-adlat-")
        self.name = f"adl{os.getpid()}"[:12]
        self.manager_sock = f"unix:///run/swarmkeeper-swarm/{self.name}/nodes/manager/run/docker.sock"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.password = base64.b64encode(os.urandom(18)).decode().replace("/", "x").replace("+", "y")
        self.admin_password = "bench-" + self.password
        self.server = None
        self.lab_env = {}
        self.docker_config = os.path.join(self.tmp, "docker")
        os.makedirs(self.docker_config)

    # --- the server ------------------------------------------------------------------------
    def start_server(self):
        key = os.path.join(self.tmp, "secret-key")
        with open(key, "w") as f:
            f.write(base64.b64encode(os.urandom(32)).decode())
        env = dict(os.environ)
        env.pop("SWARMKEEPER_REPORT_SECRET_FILE", None)
        env.update({
            "DOCKER_HOST": self.manager_sock,
            "SWARMKEEPER_SECRET_KEY_FILE": key,
            "SWARMKEEPER_ADMIN_PASSWORD": self.admin_password,
            "SWARMKEEPER_ADMIN_PASSWORD_FILE": os.path.join(self.tmp, "no-such-file"),
        })
        log = open(os.path.join(self.tmp, "server.log"), "w")
        self.server = subprocess.Popen(
            [self.args.swarmkeeper, "server", "--listen", f"127.0.0.1:{self.port}",
             "--state-dir", os.path.join(self.tmp, "state")],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                conn = connect(self.base)
                conn.request("GET", "/login")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("the server does not answer")
        cookie = login(self.base, "admin", self.admin_password)
        conn = connect(self.base)
        conn.request("GET", "/account", headers={"Cookie": cookie})
        page = conn.getresponse().read().decode()
        csrf = re.search(r'data-csrf="([^"]+)"', page).group(1)
        status, answer = self.call("POST", "/api/tokens", {"name": "bench"},
                                   {"Cookie": cookie, "x-csrf-token": csrf})
        assert status == 201, answer
        self.token = answer["token"]

    def call(self, method, path, body=None, headers=None, token=None):
        conn = connect(self.base)
        h = {"Content-Type": "application/json"}
        if token or (headers is None):
            h["Authorization"] = f"Bearer {token or self.token}"
        h.update(headers or {})
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        try:
            return resp.status, json.loads(data)
        except ValueError:
            return resp.status, data.decode(errors="replace")

    def hook_token(self):
        status, answer = self.call("POST", "/api/registries/hook-token", {})
        assert status == 201, answer
        return answer["token"]

    # --- the lab ---------------------------------------------------------------------------
    def lab_up(self, hook_token):
        say(f"lab {self.name}: manager and one worker, registry with htpasswd and notifications")
        out = run(["bash", LAB, "up", "--name", self.name, "--workers", "1",
                   "--registry-auth", f"{USER}:{self.password}",
                   "--registry-notify", f"{self.base}/api/hooks/registry",
                   "--registry-notify-token", hook_token])
        self.lab_env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        assert self.lab_env["LAB_MANAGER_HOST"] == self.manager_sock, self.lab_env
        self.registry = self.lab_env["LAB_REGISTRY"]
        self.docker(["login", self.registry, "-u", USER, "--password-stdin"], stdin=self.password)
        status, answer = self.call("POST", "/api/registries", {
            "host": self.registry, "kind": "password", "username": USER, "password": self.password})
        assert status == 201, answer

    def docker(self, args, stdin=None, check=True):
        env = dict(os.environ, DOCKER_HOST=self.manager_sock, DOCKER_CONFIG=self.docker_config)
        return run(["docker"] + args, env=env, stdin=stdin, check=check)

    def push(self, n):
        """Builds version n (busybox and 1 MiB of its own) on the manager and pushes it as
        REGISTRY/adlat:stable; returns its digest."""
        ctx = os.path.join(self.tmp, f"ctx{n}")
        os.makedirs(ctx)
        shutil.copy("/bin/busybox", os.path.join(ctx, "busybox"))
        with open(os.path.join(ctx, "blob"), "wb") as f:
            f.write(os.urandom(1 << 20))
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write("FROM scratch\nCOPY busybox /bin/busybox\nCOPY blob /blob\n")
        tag = f"{self.registry}/{SERVICE}:stable"
        env = dict(os.environ, DOCKER_HOST=self.manager_sock, DOCKER_BUILDKIT="0")
        run(["docker", "build", "-q", "-t", tag, ctx], env=env)
        shutil.rmtree(ctx)
        out = self.docker(["push", tag])
        digest = re.search(r"sha256:[0-9a-f]{64}", out).group(0)
        pushed = time.monotonic()
        self.docker(["image", "rm", tag])
        return digest, pushed

    def spec_image(self):
        return self.docker(["service", "inspect", "-f",
                            "{{.Spec.TaskTemplate.ContainerSpec.Image}}", SERVICE])

    def running_everywhere(self, digest):
        lines = self.docker(["service", "ps", "--no-trunc", "--filter", "desired-state=running",
                             "--format", "{{.CurrentState}} {{.Image}}", SERVICE]).splitlines()
        return len(lines) == 2 and all(l.startswith("Running") and l.endswith(digest) for l in lines)

    def create_service(self):
        digest, _ = self.push(0)
        self.docker(["service", "create", "--detach=false", "-q", "--with-registry-auth",
                     "--name", SERVICE, "--mode", "global",
                     "--label", "swarmkeeper.autodeploy=true",
                     # Every node at once, a short monitor: what is timed is swarmkeeper.
                     "--update-parallelism", "0", "--update-monitor", "1s",
                     "--stop-grace-period", "1s",
                     f"{self.registry}/{SERVICE}:stable",
                     "/bin/busybox", "sleep", "3600"])
        for _ in range(400):
            status, view = self.call("GET", f"/api/services/{SERVICE}")
            if status == 200 and view["autodeploy"]["enabled"]:
                return digest
            time.sleep(0.1)
        raise SystemExit("the server does not follow the service")

    def one(self, n, limit):
        before = self.spec_image()
        digest, pushed = self.push(n)
        started = None
        while time.monotonic() - pushed < limit:
            if started is None and self.spec_image() != before:
                started = time.monotonic() - pushed
                assert self.spec_image().endswith(digest), (self.spec_image(), digest)
            if started is not None and self.running_everywhere(digest):
                return started, time.monotonic() - pushed
            time.sleep(0.05)
        raise SystemExit(f"version {n} not rolled out within {limit} s (started: {started})")

    def close(self):
        if self.server:
            self.server.terminate()
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()
        subprocess.run(["bash", LAB, "down", "--name", self.name], capture_output=True)
        if os.environ.get("BENCH_KEEP") == "1":
            say(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def spread(values):
    values = sorted(values)
    return (f"median {statistics.median(values):.1f} s, min {values[0]:.1f} s, "
            f"max {values[-1]:.1f} s (n={len(values)})")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--swarmkeeper", required=True)
    p.add_argument("--pushes", type=int, default=5)
    p.add_argument("--poll-pushes", type=int, default=3)
    args = p.parse_args()
    bench = Bench(args)
    try:
        bench.start_server()
        bench.lab_up(bench.hook_token())
        bench.create_service()
        hook = []
        for n in range(1, args.pushes + 1):
            hook.append(bench.one(n, 60))
            say(f"notification push {n}: started {hook[-1][0]:.1f} s, running {hook[-1][1]:.1f} s")
        # A new registry hook token: the one the registry sends stops working (401), so from
        # here only the 1m poll finds a push. Each push at a random point of the interval.
        bench.hook_token()
        poll = []
        for n in range(args.pushes + 1, args.pushes + args.poll_pushes + 1):
            time.sleep(random.uniform(0, 60))
            poll.append(bench.one(n, 150))
            say(f"poll push {n}: started {poll[-1][0]:.1f} s, running {poll[-1][1]:.1f} s")
    finally:
        bench.close()
    load = open("/proc/loadavg").read().split()[:3]
    print(f"lab: manager + 1 worker, global service (2 tasks), 1 MiB versions, load average {' '.join(load)}")
    print(f"registry notification  push -> rollout started: {spread([h[0] for h in hook])}")
    print(f"                       push -> running on every node: {spread([h[1] for h in hook])}")
    print(f"poll at the default 1m push -> rollout started: {spread([h[0] for h in poll])}")
    print(f"                       push -> running on every node: {spread([h[1] for h in poll])}")
    print("Swarmpit (fixed 1-minute poll of every service, by its design; not run here): "
          "push -> redeploy started uniform over 0-60 s, mean 30 s, max 60 s, no notification path")


if __name__ == "__main__":
    main()
