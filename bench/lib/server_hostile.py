#!/usr/bin/env python3
"""Hostile traffic against a running `swarmkeeper server` (bench/server-hostile.sh).

    server_hostile.py ATTACK --port PORT --pid PID [--secret S] [--cgroup DIR]

ATTACK is one of:
  logins        200 concurrent wrong logins, each at another (unknown) user, from 50 loopback
                addresses, all sent at once; then the same again
  uploads       100 anonymous POST /api/agent/report of 4 MiB that stop 1 KiB short and stall
                (each waits up to 35 s for an answer)
  uploads-auth  the same with the report secret (a node that holds it)
  halfopen      3,000 connections from 12 loopback addresses: half send nothing, half a
                request line and one header, then stall

While an attack runs, GET /healthz is sent every 200 ms from an address of its own; each must
be answered within 2 s. Peak memory is the server's VmHWM from /proc, and with --cgroup the
cgroup's memory.max_usage_in_bytes and its OOM kill count. Prints one JSON object.
"""

import argparse
import asyncio
import json
import os
import resource
import time

HOLD = 12.0  # seconds half-open connections are held (the server's header deadline is 10 s)
UPLOAD_HOLD = 35.0  # seconds a stalled upload waits for an answer (the deadline is 30 s)


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return None
    return None


def cgroup_value(cgroup, name):
    if not cgroup:
        return None
    try:
        with open(os.path.join(cgroup, name)) as f:
            text = f.read()
    except OSError:
        return None
    if name == "memory.oom_control":
        for line in text.splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return None
    return int(text.strip())


async def connect(port, source):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def request(port, source, head, body=b"", timeout=60.0):
    async def run():
        reader, writer = await connect(port, source)
        writer.write(
            head.encode()
            + f"\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        data = await reader.read()
        writer.close()
        return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0

    return await asyncio.wait_for(run(), timeout)


class Health:
    """GET /healthz every 200 ms while an attack runs."""

    def __init__(self, port, pid):
        self.port = port
        self.pid = pid
        self.peak_kib = status_kib(pid, "VmHWM")
        self.ok = 0
        self.failed = 0
        self.slowest = 0.0
        self.stop = asyncio.Event()

    async def run(self):
        while not self.stop.is_set():
            start = time.monotonic()
            try:
                status = await request(self.port, "127.0.0.254", "GET /healthz HTTP/1.1", timeout=2.0)
                if status == 200:
                    self.ok += 1
                else:
                    self.failed += 1
            except Exception:
                self.failed += 1
            self.slowest = max(self.slowest, time.monotonic() - start)
            # The last figure seen survives the server being killed.
            self.peak_kib = max(self.peak_kib or 0, status_kib(self.pid, "VmHWM") or 0)
            try:
                await asyncio.wait_for(self.stop.wait(), 0.2)
            except asyncio.TimeoutError:
                pass


def form(**fields):
    from urllib.parse import urlencode

    return urlencode(fields).encode()


async def logins(port, _secret):
    statuses = {}
    for wave in range(2):
        gate = asyncio.Event()

        async def one(i):
            await gate.wait()
            try:
                return await request(
                    port,
                    f"127.0.0.{10 + i % 50}",
                    "POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded",
                    form(username=f"guess{wave}x{i}", password="wrong password, long enough", next="/"),
                )
            except Exception as e:
                return type(e).__name__

        tasks = [asyncio.create_task(one(i)) for i in range(200)]
        await asyncio.sleep(0.2)
        gate.set()
        for status in await asyncio.gather(*tasks):
            statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {"answers": statuses}


async def stalled_uploads(port, secret):
    answered = {}
    body_size = 4 * 1024 * 1024
    auth = f"Authorization: Bearer {secret}\r\n" if secret else ""

    async def one(i):
        try:
            reader, writer = await connect(port, f"127.0.0.{60 + i % 10}")
        except OSError as e:
            return type(e).__name__
        # The answer may come while the body is still being sent, as curl and reqwest read it.
        answer = asyncio.create_task(reader.read(64))
        writer.write(
            (
                f"POST /api/agent/report HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
                f"Content-Type: application/json\r\nContent-Length: {body_size}\r\n\r\n"
            ).encode()
        )
        # All but the last KiB of the body, then nothing more.
        stop_at = body_size - 1024
        sent = 0
        try:
            while sent < stop_at and not answer.done():
                size = min(65536, stop_at - sent)
                writer.write(b" " * size)
                await asyncio.wait_for(writer.drain(), 2.0)
                sent += size
        except (OSError, asyncio.TimeoutError):
            pass
        try:
            data = await asyncio.wait_for(answer, UPLOAD_HOLD)
            status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "closed"
        except asyncio.TimeoutError:
            status = f"held {UPLOAD_HOLD:.0f} s"
        except OSError as e:
            status = type(e).__name__
        if sent < stop_at:
            status += " before the body"
        writer.close()
        return status

    for status in await asyncio.gather(*(one(i) for i in range(100))):
        answered[status] = answered.get(status, 0) + 1
    return {"answers": answered}


async def uploads(port, _secret):
    return await stalled_uploads(port, None)


async def uploads_auth(port, secret):
    return await stalled_uploads(port, secret)


async def halfopen(port, _secret):
    streams = []
    refused = 0
    for i in range(3000):
        try:
            reader, writer = await connect(port, f"127.0.0.{30 + i % 12}")
        except OSError:
            refused += 1
            continue
        if i % 2:
            writer.write(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow")
        streams.append((reader, writer))
    opened_at = time.monotonic()
    await asyncio.sleep(max(0.0, 8.0 - (time.monotonic() - opened_at)))
    page = await request(port, "127.0.0.253", "GET /login HTTP/1.1", timeout=5.0)
    await asyncio.sleep(max(0.0, HOLD - (time.monotonic() - opened_at)))
    closed = 0
    for reader, writer in streams:
        try:
            data = await asyncio.wait_for(reader.read(64), 0.01)
            closed += 1 if data == b"" or data.startswith(b"HTTP/") else 0
        except asyncio.TimeoutError:
            pass
        except OSError:
            closed += 1
        writer.close()
    return {
        "opened": len(streams),
        "refused_at_connect": refused,
        "login_page_during": page,
        f"closed_by_server_within_{int(HOLD)}s": closed,
    }


ATTACKS = {
    "logins": logins,
    "uploads": uploads,
    "uploads-auth": uploads_auth,
    "halfopen": halfopen,
}


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("attack", choices=sorted(ATTACKS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--secret")
    parser.add_argument("--cgroup")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    before = status_kib(args.pid, "VmHWM")
    health = Health(args.port, args.pid)
    probe = asyncio.create_task(health.run())
    start = time.monotonic()
    try:
        outcome = await ATTACKS[args.attack](args.port, args.secret)
    except Exception as e:
        outcome = {"error": f"{type(e).__name__}: {e}"}
    took = time.monotonic() - start
    health.stop.set()
    await probe
    final = status_kib(args.pid, "VmHWM")
    alive = final is not None
    print(
        json.dumps(
            {
                "attack": args.attack,
                "seconds": round(took, 1),
                "peak_rss_before_kib": before,
                "peak_rss_kib": max(final or 0, health.peak_kib or 0),
                "rss_after_kib": status_kib(args.pid, "VmRSS"),
                "cgroup_peak_bytes": cgroup_value(args.cgroup, "memory.max_usage_in_bytes"),
                "cgroup_oom_kills": cgroup_value(args.cgroup, "memory.oom_control"),
                "alive": alive,
                "healthz_ok": health.ok,
                "healthz_failed": health.failed,
                "healthz_slowest_s": round(health.slowest, 3),
                **outcome,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
