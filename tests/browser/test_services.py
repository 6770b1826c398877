#!/usr/bin/env python3
"""Editing a service in the dashboard, in a real browser (Debian's chromium, Playwright).

Starts `target/debug/swarmkeeper server` with a fresh state dir and a busybox service on the
machine's swarm, then as the first admin: opens the service's Edit form, posts a field that
does not read (the message shows next to that field, nothing changes), changes the command to
one that exits at once, sees the preview (the change and the lint findings), applies it and
sees it rolled back by the deploy engine (the service runs its old command again, the history
says who); edits the service as compose (the environment) and sees it converge. Then a viewer,
made on the users page, sees no Edit buttons and has a direct POST of the form refused (403).

Screenshots go to target/browser-screenshots/svc-NN-name.png. Any console or page error, and
any HTTP error answer other than the ones the test provokes, fails the test. The service and
the server are removed whatever happens.

Run: python3 tests/browser/test_services.py (scripts/browser-test.sh installs what it needs).
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402
    IMAGE, PASSWORD, browse, busybox_service, check, entry, fresh_server, outcome, prepare, stepper,
)
from test_dashboard import service_env, service_spec  # noqa: E402

VIEWER = "svcviewer"
VIEWER_PASSWORD = "browser-viewer-password-1"


def args_of(name):
    return service_spec(name)["Spec"]["TaskTemplate"]["ContainerSpec"].get("Args") or []


def walk(run, viewer, name, server, steps):
    page = run.page
    step = stepper(steps)

    step("log in as admin; the service page has Edit and Edit as compose")
    run.log_in("admin", PASSWORD)
    run.goto(f"/services/{name}")
    check(page.locator("#edit-service").count() == 1, "an admin sees no Edit button")
    check(page.locator("#edit-compose").count() == 1, "an admin sees no Edit as compose button")
    run.shot("service")

    step("the form: a field that does not read is refused next to it, nothing changes")
    with page.expect_navigation():
        page.click("#edit-service")
    check(run.path() == f"/services/{name}/edit", f"Edit went to {run.path()}")
    check(page.input_value("input[name=command]") == "/bin/busybox sleep 3600",
          f"the form does not show the command: {page.input_value('input[name=command]')!r}")
    version = service_spec(name)["Version"]["Index"]
    page.fill("input[name=replicas]", "three")
    seen = len(run.problems)
    with page.expect_navigation():
        page.click("#preview-button")
    run.provoked(seen, 422)
    message = page.locator(".error-message[data-field=replicas]")
    check(message.count() == 1, "no message next to the replicas field")
    check("three" in message.inner_text(), f"the message does not name the value: {message.inner_text()!r}")
    check(service_spec(name)["Version"]["Index"] == version, "a refused form changed the service")
    run.shot("form-refused")

    step("change the command to one that exits: preview, apply, rolled back")
    page.fill("input[name=replicas]", "1")
    page.fill("input[name=command]", "/bin/busybox false")
    with page.expect_navigation():
        page.click("#preview-button")
    changes = page.locator("#changes").inner_text()
    check("false" in changes, f"the preview does not show the new command: {changes!r}")
    check(page.locator("#findings").count() == 1, "the preview shows no lint section")
    check(service_spec(name)["Version"]["Index"] == version, "a preview changed the service")
    run.shot("form-preview")
    with page.expect_navigation():
        page.click("#apply")
    # The change's progress page (tests/browser/test_progress.py follows it line by line).
    page.locator("#outcome").wait_for(timeout=120000)
    outcome = page.locator("#outcome").inner_text()
    check("rolled back" in outcome, f"the broken edit was not rolled back: {outcome!r}")
    check(args_of(name) == ["/bin/busybox", "sleep", "3600"], f"the service did not go back: {args_of(name)}")
    run.shot("rolled-back")
    run.goto(f"/stacks/{name}")
    history = page.locator("body").inner_text()
    # The history row: who in its own column, what in the summary (`page::who_and_what`).
    row = page.locator("tr", has_text="edited in the dashboard").first.inner_text()
    check("admin" in row.split(), f"the history does not say who edited: {row!r} in {history!r}")
    run.shot("history")

    step("edit as compose: the environment changes and converges")
    run.goto(f"/services/{name}/compose")
    text = page.input_value("textarea[name=compose]")
    check('"A=1"' in text, f"the compose text does not hold the environment:\n{text}")
    page.fill("textarea[name=compose]", text.replace('"A=1"', '"A=2"'))
    with page.expect_navigation():
        page.click("#preview-button")
    check("A=2" in page.locator("#changes").inner_text(), "the compose preview does not show the change")
    run.shot("compose-preview")
    with page.expect_navigation():
        page.click("#apply")
    page.locator("#outcome").wait_for(timeout=120000)
    check("succeeded" in page.locator("#outcome").inner_text(), "the compose edit did not succeed")
    check(service_env(name) == ["A=2"], f"the environment is {service_env(name)}")
    run.shot("compose-applied")

    step("make a viewer")
    run.add_user(VIEWER, "viewer", VIEWER_PASSWORD)

    step("a viewer sees no change button, and a direct POST is refused")
    viewer.log_in(VIEWER, VIEWER_PASSWORD)
    viewer.goto(f"/services/{name}")
    for button in ("#edit-service", "#edit-compose"):
        check(viewer.page.locator(button).count() == 0, f"a viewer sees {button}")
    viewer.shot("viewer-service")
    csrf = viewer.page.locator("input[name=csrf_token]").first.get_attribute("value")
    check(csrf, "no CSRF token on the viewer's page")
    version = service_spec(name)["Version"]["Index"]
    for path, form in (
        (f"/services/{name}/edit", {"name": name, "image": IMAGE, "command": "/bin/busybox false",
                                    "confirm": "yes", "csrf_token": csrf}),
        (f"/services/{name}/compose", {"compose": "services: {}", "confirm": "yes", "csrf_token": csrf}),
    ):
        answer = viewer.page.request.post(server.base + path, form=form, max_redirects=0)
        check(answer.status == 403, f"a viewer's POST {path} answered {answer.status}")
    check(service_spec(name)["Version"]["Index"] == version, "a viewer's POST changed the service")


def main():
    started = time.monotonic()
    prepare("svc-")
    steps = []
    try:
        with fresh_server("services") as server, busybox_service(
            f"sksvcform-{os.getpid()}", "--update-monitor", "2s", "--restart-delay", "1s", "--env", "A=1",
        ) as name:
            server.wait_ready()
            browse(server.base, lambda runs, _: walk(runs[0], runs[1], name, server, steps), sessions=2,
                   prefix="svc-")
    except Exception as e:
        return outcome("browser services", steps, started, e)
    return outcome("browser services", steps, started)


if __name__ == "__main__":
    entry(main)
