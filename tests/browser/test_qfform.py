#!/usr/bin/env python3
"""The service form at phone width, in a real browser (Debian's chromium, Playwright).

Starts `target/debug/swarmkeeper server` with a fresh state dir and a busybox service on the
machine's swarm, then as the first admin opens /services/new and /services/NAME/edit in a
390x844 window: neither page may scroll sideways (`scrollWidth == clientWidth`). The form's
hints carry long unbreakable examples (the mount line) that once made it 1108 px wide.

Screenshots go to target/browser-screenshots/qff-NN-name.png. The service and the server are
removed whatever happens.

Run: python3 tests/browser/test_qfform.py (scripts/browser-test.sh installs what it needs).
"""

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402
    IMAGE, LABEL, OUT, PASSWORD, Server, browse, build_image, check, docker, entry, outcome, prepare,
    remove_history, say,
)


def walk(run, name, steps):
    page = run.page

    def step(label):
        steps.append(label)
        say(f"[{len(steps):2d}] {label}")

    step("log in as admin")
    run.log_in("admin", PASSWORD)

    step("a phone-sized window (390x844): the service form does not scroll sideways")
    page.set_viewport_size({"width": 390, "height": 844})
    for path, label in (("/services/new", "narrow-new"), (f"/services/{name}/edit", "narrow-edit")):
        run.goto(path)
        check(page.locator("#service-form").count() == 1, f"{path} shows no service form")
        scroll, client = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        run.shot(label)
        check(scroll == client, f"{path} is {scroll} px wide in a {client} px window (scrolls sideways)")


def main():
    started = time.monotonic()
    prepare("qff-")
    name = f"skqfform-{os.getpid()}"
    state_dir = tempfile.mkdtemp(prefix="skqfform-state-")
    server = None
    created = False
    steps = []
    try:
        server = Server(state_dir, OUT / "qfform-server.log")
        build_image()
        created = True
        docker("service", "create", "--quiet", "--detach=false", "--name", name, "--label", f"{LABEL}=1",
               "--replicas", "1", "--stop-grace-period", "1s",
               "--mount", "type=tmpfs,target=/tmp,tmpfs-size=67108864",
               IMAGE, "/bin/busybox", "sleep", "3600")
        server.wait_ready()
        browse(server.base, lambda runs, _: walk(runs[0], name, steps), prefix="qff-")
    except Exception as e:
        return outcome("browser qfform", steps, started, e)
    finally:
        if created:
            docker("service", "rm", name, check_ok=False)
            remove_history(name)
        if server:
            server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
    return outcome("browser qfform", steps, started)


if __name__ == "__main__":
    entry(main)
