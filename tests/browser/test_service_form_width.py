#!/usr/bin/env python3
"""The service form at phone width, in a real browser (Debian's chromium, Playwright).

Starts `target/debug/swarmkeeper server` with a fresh state dir and a busybox service on the
machine's swarm, then as the first admin opens /services/new and /services/NAME/edit in a
390x844 window: neither page may scroll sideways (`scrollWidth == clientWidth`). The form's
hints carry long unbreakable examples (the mount line) that once made it 1108 px wide.

Screenshots go to target/browser-screenshots/sfw-NN-name.png. The service and the server are
removed whatever happens.

Run: python3 tests/browser/test_service_form_width.py (scripts/browser-test.sh installs what it
needs).
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402
    PASSWORD, browse, busybox_service, check, entry, fresh_server, outcome, prepare, stepper,
)


def walk(run, name, steps):
    page = run.page
    step = stepper(steps)

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
    prepare("sfw-")
    steps = []
    try:
        with fresh_server("service-form-width") as server, busybox_service(
            f"sksfwidth-{os.getpid()}", "--mount", "type=tmpfs,target=/tmp,tmpfs-size=67108864",
        ) as name:
            server.wait_ready()
            browse(server.base, lambda runs, _: walk(runs[0], name, steps), prefix="sfw-")
    except Exception as e:
        return outcome("browser service form width", steps, started, e)
    return outcome("browser service form width", steps, started)


if __name__ == "__main__":
    entry(main)
