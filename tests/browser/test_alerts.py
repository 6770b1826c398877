#!/usr/bin/env python3
"""The Alerts page in a real browser: Debian's chromium driven by Playwright.

Starts `target/debug/swarmkeeper server` with a secret key and a report secret, and a webhook
receiver (Python's http.server) on this machine; then, as the admin: adds a webhook channel
(its URL carries a token that no page may show again), sends a test (the receiver must have
it), silences a node, posts an agent report whose full disk GC could not fix for another node
(the receiver must get its firing alert, and nothing about the silenced node), expires the
silence, and finds both alerts in the alert history page.

Screenshots go to target/browser-screenshots/alerts-NN-name.png. Any console error, page error
or HTTP error answer fails the test. Run: python3 tests/browser/test_alerts.py (needs what
tests/browser/test_dashboard.py needs; scripts/browser-test.sh installs it).
"""

import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402
    OUT, PASSWORD, Server, browse, check, entry, outcome, poll, prepare, say,
)

TOKEN = "browser-T0K3N-never-shown"
REPORT_SECRET = "browser-alerts-report-secret"


class Receiver:
    """A webhook receiver: every JSON body posted to it, in order."""

    def __init__(self):
        self.bodies = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                try:
                    received.append(json.loads(body))
                except ValueError:
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?token={TOKEN}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def about(self, subject, rule=None):
        return [b for b in self.bodies if b.get("subject") == subject and (rule is None or b.get("rule") == rule)]

    def stop(self):
        self.server.shutdown()


def report(hostname, usage_percent):
    """An agent report of a node outside the swarm whose disk is at `usage_percent`, after a
    GC pass that fell short when it is above 85 %."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    capacity = 100 << 30
    available = capacity * (100 - usage_percent) // 100
    body = {
        "node_id": "", "hostname": hostname, "engine_version": "20.10.24", "reported_at": now,
        "agent_version": "0.1.0", "interval_seconds": 30,
        "disk": {
            "filesystem": {"path": "/var/lib/docker", "capacity_bytes": capacity, "available_bytes": available},
            "usage_percent": usage_percent, "used_bytes": capacity - available, "image_count": 0,
            "images_unique_bytes": 0, "images_shared_bytes": 0, "container_count": 0, "containers_bytes": 0,
            "logs_bytes": 0, "volume_count": 0, "volumes_bytes": 0, "build_cache_bytes": 0,
            "other_bytes": capacity - available,
        },
        "high_threshold_percent": 85, "low_threshold_percent": 80, "images": [], "gc_runs": [],
    }
    if usage_percent >= 85:
        body["last_pass"] = {
            "started_at": now, "space_trigger": "high-threshold", "usage_percent_after": usage_percent,
            "shortfall_bytes": 7 << 30, "short_of_low_threshold": True, "short_of_headroom": False,
        }
    return body


def post_report(base, body):
    request = urllib.request.Request(
        base + "/api/agent/report", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {REPORT_SECRET}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        check(answer.status == 204, f"the report was answered {answer.status}")


def walk(run, receiver, direct, steps):
    page = run.page
    pid = os.getpid()
    silenced = f"skbrowser-silenced-{pid}"
    full = f"skbrowser-full-{pid}"

    def step(label):
        steps.append(label)
        say(f"[{len(steps):2d}] {label}")

    step("log in as admin; the Alerts page")
    run.goto("/alerts")
    check(run.path().startswith("/login"), f"/alerts without a session should go to /login, went to {run.path()}")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    check(run.path().startswith("/alerts"), f"after login expected /alerts, got {run.path()}")
    check(page.locator('nav a[href="/alerts"]').count() == 1, "no Alerts entry in the navigation")
    run.shot("empty")

    step("add a webhook channel; its URL is never shown again")
    form = page.locator("#add-channel")
    form.locator("input[name=name]").fill("browser-hook")
    form.locator("select[name=type]").select_option("webhook")
    form.locator("input[name=url]").fill(receiver.url)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    rows = run.table("#channels")
    check(any(r[0].startswith("browser-hook") for r in rows), f"the channel is not listed: {rows}")
    check(TOKEN not in page.content(), "the page shows the channel's token")
    run.shot("channel-added")

    step("send test: the receiver has it and the page says so")
    with page.expect_navigation():
        page.locator("#channels tbody tr", has_text="browser-hook").locator("button", has_text="Send test").click()
    check("delivered" in run.text("#tested"), f"the test outcome: {run.text('#tested')!r}")
    poll(lambda: receiver.about("swarmkeeper", "test"), 5, "the receiver gets the test message")
    run.shot("tested")

    step("silence one node for 2 h")
    form = page.locator("#add-silence")
    form.locator("input[name=subject]").fill(silenced)
    form.locator("input[name=duration]").fill("2h")
    form.locator("input[name=comment]").fill("disk being replaced")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    rows = run.table("#silences")
    check(any(silenced in r[1] and "disk being replaced" in r[4] for r in rows), f"the silence is not listed: {rows}")
    run.shot("silenced")
    # The subject matches nothing yet, so the answer was the page with a warning, at the
    # form's POST address: reloading it would post the silence again.
    run.goto("/alerts")

    step("two full disks reported: the silenced one is held back, the other is sent")
    post_report(direct, report(silenced, 93))
    post_report(direct, report(full, 92))
    poll(lambda: receiver.about(full, "disk-gc-shortfall"), 5, f"the receiver gets the alert about {full}")
    time.sleep(1.5)
    check(not receiver.about(silenced), f"a silenced alert was sent: {receiver.about(silenced)}")
    run.reload_until(lambda: silenced in run.text("#ongoing") and full in run.text("#ongoing"), 10,
                     "both alerts are listed as ongoing")
    run.shot("ongoing")

    step("expire the silence: its alert is sent")
    with page.expect_navigation():
        page.locator("#silences tbody tr", has_text=silenced).locator("button", has_text="Expire").click()
    poll(lambda: receiver.about(silenced, "disk-gc-shortfall"), 5, f"the receiver gets the alert about {silenced}")
    check(page.locator("#silences").count() == 0, "the expired silence is still listed")
    run.shot("expired")

    step("the alert history lists both, delivered")
    run.goto("/alerts/history")
    def listed():
        rows = run.table("#history")
        return [r for r in rows if r[3] in (silenced, full) and r[1] == "firing"]
    rows = run.reload_until(lambda: len(listed()) == 2 and listed(), 10, "both firing messages are in the history")
    check(all("sent to 1 of 1" in r[6] for r in rows), f"delivery not recorded: {rows}")
    run.shot("history")


def main():
    return serve_and_walk("alerts", walk)


def serve_and_walk(name, walk):
    """Starts a server (secret key, report secret) and a webhook receiver, and runs
    `walk(run, receiver, direct, steps)` in chromium (nobody logged in); screenshots and the
    server's log are named after `name`. Shared by the alert pages' tests
    (test_alert_rules.py)."""
    started = time.monotonic()
    prepare(f"{name}-")
    state_dir = tempfile.mkdtemp(prefix=f"skbrowser-{name}-")
    key = Path(state_dir) / "secret-key"
    key.write_text("browser alerts test key, thirty-two bytes or more\n")
    secret = Path(state_dir) / "report-secret"
    secret.write_text(REPORT_SECRET + "\n")
    receiver = Receiver()
    server = None
    steps = []
    label = f"browser {name}"
    try:
        server = Server(state_dir, OUT / f"{name}-server.log",
                        ["--secret-key-file", str(key), "--report-secret-file", str(secret)])
        server.wait_ready()
        browse(server.base, lambda runs, _: walk(runs[0], receiver, server.direct, steps), prefix=f"{name}-")
    except Exception as e:
        if server:
            say(f"server log: {server.log.name}")
        return outcome(label, steps, started, e)
    finally:
        if server:
            server.stop()
        receiver.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
    return outcome(label, steps, started)


if __name__ == "__main__":
    entry(main)
