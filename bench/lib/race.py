#!/usr/bin/env python3
"""Start a garbage collector against a lab engine and time it to a disk-usage target.

    race.py --root DATA_ROOT --low PCT --in-use IMAGE_ID [--idle SECS] -- CMD ARG...

The command starts in a session of its own (so its children can be stopped with it) with the
environment of this process (DOCKER_HOST names the engine). Every --poll-ms (10) the
filesystem of DATA_ROOT is measured with statvfs and usage computed with the kubelet's
arithmetic, usage = 100 - floor(avail * 100 / capacity); the clock starts just before the
command is spawned. VmHWM and VmRSS of the command's own process are read from
/proc/PID/status at each poll. Once usage <= --low (or after --timeout), --probe is fetched
once if given, and the command is left running for --idle seconds more (VmRSS then is the
steady state; --probe is fetched again, and the agent's GC passes by trigger taken from it),
then stopped with SIGTERM to its process group. Prints one JSON object:

  time_to_target_s  seconds from spawn to the first poll at or below --low (null: never)
  usage_before, usage_at_target, usage_after (after --idle)
  hwm_kib_at_target, hwm_kib, rss_kib_after_idle, rss_split_after_idle (RssAnon, RssFile)
                    own process, from /proc/PID/status
  tree_rss_kib_max  the largest sum of VmRSS over the command's session (it and its children,
                    such as docker CLI processes), sampled at each poll until the target;
                    children living less than a poll interval can be missed
  images_before, images_after, in_use_survived
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine import Engine  # noqa: E402


def usage(path):
    st = os.statvfs(path)
    cap = st.f_blocks * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    return 100 - (avail * 100) // cap


def proc_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:", "RssAnon:", "RssFile:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def session_rss_kib(sid):
    """Sum of the resident memory of every process in session SID (the tool and its children,
    e.g. the docker CLI processes docuum runs), and how many there are."""
    total = count = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            if int(fields[3]) != sid:
                continue
            with open(f"/proc/{d}/statm", "rb") as f:
                total += int(f.read().split()[1]) * PAGE_KIB
            count += 1
        except (OSError, IndexError, ValueError):
            pass
    return total, count


def image_ids():
    e = Engine()
    try:
        return {i["Id"] for i in e.images()}
    finally:
        e.close()


def fetch(url):
    """(HTTP status, body) of a GET, or (error text, "")."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except (OSError, urllib.error.URLError) as e:
        return str(e), ""


def gc_runs(metrics_text):
    """swarmkeeper_gc_runs_total by trigger, from the agent's /metrics."""
    runs = {}
    for line in metrics_text.splitlines():
        if line.startswith('swarmkeeper_gc_runs_total{trigger="'):
            trigger = line.split('"')[1]
            runs[trigger] = int(float(line.rsplit(" ", 1)[1]))
    return runs


def stop(proc):
    """SIGTERM to the command's process group, SIGKILL after 10 s; then SIGKILL to whatever of
    the group outlived it (docuum's `docker system events`)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--low", type=int, required=True)
    p.add_argument("--in-use", required=True)
    p.add_argument("--idle", type=float, default=1.0)
    p.add_argument("--poll-ms", type=float, default=10)
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--log", default=os.devnull)
    p.add_argument("--pidfile", help="write the command's pid here (removed when it is stopped)")
    p.add_argument("--probe", help="a URL to GET once the target is reached (the agent's /metrics)")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    a = p.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd

    before = image_ids()
    usage_before = usage(a.root)
    hwm = rss = 0
    tree_max = tree_procs = 0
    hwm_at_target = None
    usage_at_target = None
    took = None
    log = open(a.log, "wb")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    if a.pidfile:
        with open(a.pidfile, "w") as f:
            f.write(f"{proc.pid}\n")
    try:
        poll = a.poll_ms / 1000
        deadline = t0 + a.timeout
        exited_early = False
        while True:
            u = usage(a.root)
            now = time.monotonic()
            st = proc_status(proc.pid)
            hwm = max(hwm, st.get("VmHWM", 0))
            tree, procs = session_rss_kib(proc.pid)
            tree_max = max(tree_max, tree)
            tree_procs = max(tree_procs, procs)
            if u <= a.low:
                took = now - t0
                usage_at_target = u
                hwm_at_target = hwm
                break
            if proc.poll() is not None:
                exited_early = True
                break
            if now >= deadline:
                break
            time.sleep(max(0.0, poll - (time.monotonic() - now)))

        probe = fetch(a.probe) if a.probe and not exited_early else None
        idle_end = time.monotonic() + a.idle
        while not exited_early and time.monotonic() < idle_end:
            st = proc_status(proc.pid)
            hwm = max(hwm, st.get("VmHWM", 0))
            rss = st.get("VmRSS", rss)
            if proc.poll() is not None:
                exited_early = True
                break
            time.sleep(0.1)
        st = proc_status(proc.pid)
        hwm = max(hwm, st.get("VmHWM", 0))
        rss = st.get("VmRSS", rss)
        rss_split = {k: st[k] for k in ("RssAnon", "RssFile") if k in st}
        usage_after = usage(a.root)
        probe_end = fetch(a.probe) if a.probe and not exited_early else None
    finally:
        stop(proc)
        if a.pidfile:
            os.unlink(a.pidfile)

    after = image_ids()
    print(json.dumps({
        "time_to_target_s": took,
        "usage_before": usage_before,
        "usage_at_target": usage_at_target,
        "usage_after": usage_after,
        "hwm_kib_at_target": hwm_at_target,
        "hwm_kib": hwm,
        "rss_kib_after_idle": rss if a.idle >= 1 else None,
        "rss_split_after_idle": rss_split,
        "idle_s": a.idle,
        "tree_rss_kib_max": tree_max,
        "tree_procs_max": tree_procs,
        "images_before": len(before),
        "images_after": len(after),
        "in_use_survived": a.in_use in after,
        "probe": probe[0] if probe else None,
        "gc_runs_at_end": gc_runs(probe_end[1]) if probe_end else None,
        "exited_early": exited_early,
        "exit_code": proc.returncode,
    }))


if __name__ == "__main__":
    main()
