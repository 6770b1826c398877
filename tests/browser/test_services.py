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
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_dashboard as dash  # noqa: E402  (the shared server, docker and browser helpers)
from test_dashboard import Failure, check, docker, poll, say  # noqa: E402

VIEWER = "svcviewer"
VIEWER_PASSWORD = "browser-viewer-password-1"


class Shots(dash.Run):
    """The dashboard test's session, with screenshots of its own."""

    def shot(self, name):
        path = dash.OUT / f"svc-{len(self.shots) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path.name)

    def provoked(self, since, status):
        """Forgets the HTTP errors with `status` seen since `since`: the test asked for them."""
        kept = [p for p in self.problems[since:]
                if not p.startswith(f"HTTP {status} ") and f"status of {status} " not in p]
        del self.problems[since:]
        self.problems.extend(kept)


def login(run, user, password):
    page = run.page
    run.goto("/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    check(not run.path().startswith("/login"), f"{user} could not log in")


def args_of(name):
    return dash.service_spec(name)["Spec"]["TaskTemplate"]["ContainerSpec"].get("Args") or []


def walk(run, browser, name, server, steps):
    page = run.page

    def step(label):
        steps.append(label)
        say(f"[{len(steps):2d}] {label}")

    step("log in as admin; the service page has Edit and Edit as compose")
    login(run, "admin", dash.PASSWORD)
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
    version = dash.service_spec(name)["Version"]["Index"]
    page.fill("input[name=replicas]", "three")
    seen = len(run.problems)
    with page.expect_navigation():
        page.click("#preview-button")
    run.provoked(seen, 422)
    message = page.locator(".error-message[data-field=replicas]")
    check(message.count() == 1, "no message next to the replicas field")
    check("three" in message.inner_text(), f"the message does not name the value: {message.inner_text()!r}")
    check(dash.service_spec(name)["Version"]["Index"] == version, "a refused form changed the service")
    run.shot("form-refused")

    step("change the command to one that exits: preview, apply, rolled back")
    page.fill("input[name=replicas]", "1")
    page.fill("input[name=command]", "/bin/busybox false")
    with page.expect_navigation():
        page.click("#preview-button")
    changes = page.locator("#changes").inner_text()
    check("false" in changes, f"the preview does not show the new command: {changes!r}")
    check(page.locator("#findings").count() == 1, "the preview shows no lint section")
    check(dash.service_spec(name)["Version"]["Index"] == version, "a preview changed the service")
    run.shot("form-preview")
    seen = len(run.problems)
    with page.expect_navigation(timeout=120000):
        page.click("#apply")
    run.provoked(seen, 409)
    outcome = page.locator("#outcome").inner_text()
    check("rolled back" in outcome, f"the broken edit was not rolled back: {outcome!r}")
    check(args_of(name) == ["/bin/busybox", "sleep", "3600"], f"the service did not go back: {args_of(name)}")
    run.shot("rolled-back")
    run.goto(f"/stacks/{name}")
    history = page.locator("body").inner_text()
    check("edited in the dashboard by admin" in history, "the history does not say who edited")
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
    with page.expect_navigation(timeout=120000):
        page.click("#apply")
    check("succeeded" in page.locator("#outcome").inner_text(), "the compose edit did not succeed")
    check(dash.service_env(name) == ["A=2"], f"the environment is {dash.service_env(name)}")
    run.shot("compose-applied")

    step("make a viewer")
    run.goto("/users")
    page.fill("form[action='/users'] input[name=username]", VIEWER)
    page.select_option("form[action='/users'] select[name=role]", "viewer")
    page.fill("form[action='/users'] input[name=password]", VIEWER_PASSWORD)
    with page.expect_navigation():
        page.click("form[action='/users'] button[type=submit]")

    step("a viewer sees no change button, and a direct POST is refused")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        viewer = Shots(context.new_page(), server.base)
        viewer.shots = run.shots
        login(viewer, VIEWER, VIEWER_PASSWORD)
        viewer.goto(f"/services/{name}")
        for button in ("#edit-service", "#edit-compose"):
            check(viewer.page.locator(button).count() == 0, f"a viewer sees {button}")
        viewer.shot("viewer-service")
        csrf = viewer.page.locator("input[name=csrf_token]").first.get_attribute("value")
        check(csrf, "no CSRF token on the viewer's page")
        version = dash.service_spec(name)["Version"]["Index"]
        for path, form in (
            (f"/services/{name}/edit", {"name": name, "image": dash.IMAGE, "command": "/bin/busybox false",
                                        "confirm": "yes", "csrf_token": csrf}),
            (f"/services/{name}/compose", {"compose": "services: {}", "confirm": "yes", "csrf_token": csrf}),
        ):
            answer = viewer.page.request.post(server.base + path, form=form, max_redirects=0)
            check(answer.status == 403, f"a viewer's POST {path} answered {answer.status}")
        check(dash.service_spec(name)["Version"]["Index"] == version, "a viewer's POST changed the service")
        check(not viewer.problems, "the viewer's browser saw errors:\n  " + "\n  ".join(viewer.problems))
    finally:
        context.close()


def main():
    started = time.monotonic()
    check(dash.BINARY.exists(), f"{dash.BINARY} is missing: cargo build -p swarmkeeper-cli")
    from playwright.sync_api import sync_playwright

    dash.OUT.mkdir(parents=True, exist_ok=True)
    for old in dash.OUT.glob("svc-*.png"):
        old.unlink()
    chromium = dash.chromium_path()
    name = f"sksvcform-{os.getpid()}"
    state_dir = tempfile.mkdtemp(prefix="sksvcform-state-")
    server = None
    created = False
    run = None
    steps = []
    try:
        server = dash.Server(state_dir, dash.OUT / "services-server.log")
        dash.build_image()
        created = True
        docker("service", "create", "--quiet", "--detach=false", "--name", name, "--label", f"{dash.LABEL}=1",
               "--replicas", "1", "--update-monitor", "2s", "--restart-delay", "1s", "--stop-grace-period", "1s",
               "--env", "A=1", dash.IMAGE, "/bin/busybox", "sleep", "3600")
        server.wait_ready()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=dash.CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                page = context.new_page()
                page.set_default_timeout(15000)
                run = Shots(page, server.base)
                try:
                    walk(run, browser, name, server, steps)
                except Exception:
                    try:
                        run.shot("FAILED")
                    except Exception:
                        pass
                    raise
                check(not run.problems, "the browser saw errors:\n  " + "\n  ".join(run.problems))
            finally:
                browser.close()
    except Exception as e:
        if run and run.problems:
            say("browser errors seen before the failure:\n  " + "\n  ".join(run.problems))
        if not isinstance(e, Failure):
            traceback.print_exc(file=sys.stdout)
        say(f"FAILED: {e}")
        print(f"browser services: {max(len(steps) - 1, 0)} passed, 1 failed", flush=True)
        return 1
    finally:
        if created:
            docker("service", "rm", name, check_ok=False)
            # The history revisions the edits recorded, and the lock object.
            for config in docker("config", "ls", "-q", "--filter",
                                 f"label=swarmkeeper.revision.stack={name}", check_ok=False).split():
                docker("config", "rm", config, check_ok=False)
            docker("config", "rm", f"swarmkeeper-lock-{name}", check_ok=False)
        if server:
            server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
    say(f"screenshots in {dash.OUT}: {', '.join(run.shots)}")
    say(f"done in {time.monotonic() - started:.1f} s")
    print(f"browser services: {len(steps)} passed, 0 failed", flush=True)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(main())
    except Failure as e:
        say(f"FAILED: {e}")
        sys.exit(1)
