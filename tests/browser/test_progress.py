#!/usr/bin/env python3
"""A dashboard change followed live, in a real browser (Debian's chromium, Playwright).

Starts `target/debug/swarmkeeper server` with a fresh state dir, a busybox service and a
secret it uses on the machine's swarm, then as the first admin:

- edits the service's image to a tag that does not exist in the form, previews and applies:
  the post answers with the change's progress page at once, the deploy engine's lines appear
  on it while the change still runs (at least one line while the page says "running"), then
  the outcome "rolled back" with a link to the history, which says "edited in the dashboard
  by admin"; the service runs its old image again;
- rotates the secret from its page: the progress page, then "rotated to NAME.v2";
- opens the first change's page again with scripts off: a finished job's page is plain HTML
  that does not reload; and a running one reloads itself (checked on the rotation's page).

Prints the time from the click on Apply to the first deploy line on the page, with the load
average. Screenshots go to target/browser-screenshots/progress-NN-name.png. Any console or
page error, and any HTTP error answer, fails the test. The service, secrets, history and the
server are removed whatever happens.

Run: python3 tests/browser/test_progress.py (scripts/browser-test.sh installs what it needs).
"""

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402
    IMAGE, LABEL, OUT, PASSWORD, Server, browse, build_image, check, docker, entry, outcome, poll, prepare,
    remove_history, say,
)

BROKEN = "skbrowser:no-such-tag"


def image_of(name):
    return docker("service", "inspect", name, "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}")


def secret_of(service):
    return docker("service", "inspect", service, "--format",
                  "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}} {{end}}").split()


def progress_lines(page):
    text = page.locator("#progress").inner_text() if page.locator("#progress").count() else ""
    return [line for line in text.splitlines() if line.strip()]


def follow(run, name, timeout=180):
    """On a job's page: waits for its end (the page reloads itself then) and returns the
    outcome's text, having checked that a line of `name`'s deploy showed while it ran.
    Returns (outcome, seconds from now to the first such line)."""
    page = run.page
    check(run.path().startswith("/jobs/"), f"the change did not go to its progress page: {run.path()}")
    started = time.monotonic()
    first = {}

    def a_line_while_running():
        state = page.get_attribute("#job", "data-state")
        lines = [line for line in progress_lines(page) if line.startswith(f"{name}:")]
        if state == "running" and lines:
            first["at"] = time.monotonic() - started
            first["line"] = lines[0]
            return True
        check(state == "running", f"the change ended before a line of {name} showed: {progress_lines(page)}")
        return False

    poll(a_line_while_running, 60, f"a progress line of {name} while the change runs", interval=0.05)
    run.shot("running")
    page.locator("#outcome").wait_for(timeout=timeout * 1000)
    return page.locator("#outcome").inner_text(), first["at"]


def walk(run, names, steps, figures):
    page = run.page
    name, secret = names["service"], names["secret"]

    def step(label):
        steps.append(label)
        say(f"[{len(steps):2d}] {label}")

    step("log in as admin; edit the image to a tag that does not exist, preview")
    run.log_in("admin", PASSWORD)
    run.goto(f"/services/{name}/edit")
    page.fill("input[name=image]", BROKEN)
    with page.expect_navigation():
        page.click("#preview-button")
    check(BROKEN in page.locator("#changes").inner_text(), "the preview does not show the new image")
    run.shot("preview")

    step("apply: the progress page at once, deploy lines while it runs, then rolled back")
    clicked = time.monotonic()
    with page.expect_navigation():
        page.click("#apply")
    answered = time.monotonic() - clicked
    text, first_line = follow(run, name)
    figures["post_to_page_s"] = answered
    figures["post_to_first_line_s"] = answered + first_line
    figures["load"] = os.getloadavg()
    check("rolled back" in text, f"the broken image was not rolled back: {text!r}")
    check(image_of(name).split("@")[0] == IMAGE, f"the service runs {image_of(name)}, not {IMAGE}")
    run.shot("rolled-back")
    job_page = run.path()
    links = page.eval_on_selector_all("#outcome a", "links => links.map(a => a.getAttribute('href'))")
    check(f"/stacks/{name}" in links, f"the outcome does not link the history: {links}")
    with page.expect_navigation():
        page.click(f"#outcome a[href='/stacks/{name}']")
    history = page.locator("body").inner_text()
    # The history row: who in its own column, what in the summary (`page::who_and_what`).
    row = page.locator("tr", has_text="edited in the dashboard").first.inner_text()
    check("admin" in row.split(), f"the history does not say who edited: {row!r} in {history!r}")
    run.shot("history")

    step("rotate the secret from its page: progress, then rotated")
    run.goto(f"/secrets/{secret}")
    page.fill("#rotate textarea[name=data]", "second value")
    with page.expect_navigation():
        page.click("#rotate button[type=submit]")
    text, _ = follow(run, name)
    check(f"rotated to {secret}.v2" in text, f"the rotation did not end rotated: {text!r}")
    check(secret_of(name) == [f"{secret}.v2"], f"{name} uses {secret_of(name)}, not {secret}.v2")
    run.shot("rotated")

    step("a finished change's page is plain HTML: no reload, the lines and the outcome")
    run.goto(job_page)
    check(page.get_attribute("#job", "data-state") == "done", "a finished job's page says it runs")
    check(page.locator("meta[http-equiv=refresh]").count() == 0, "a finished job's page reloads itself")
    check(progress_lines(page), "a finished job's page shows no lines")


def without_scripts_reloads(base, names, steps):
    """A running job's page reloads itself when scripts are off: a config rotation started in
    a session without JavaScript ends on its own page."""
    from playwright.sync_api import sync_playwright
    from harness import CHROMIUM_ARGS, VIEWPORT, chromium_path

    steps.append("without scripts: a running change's page reloads itself until the end")
    say(f"[{len(steps):2d}] {steps[-1]}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=VIEWPORT, java_script_enabled=False).new_page()
            page.set_default_timeout(15000)
            page.goto(base + "/login")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", PASSWORD)
            with page.expect_navigation():
                page.click("button[type=submit]")
            page.goto(f"{base}/configs/{names['config']}")
            page.fill("#rotate textarea[name=data]", "v2")
            with page.expect_navigation():
                page.click("#rotate button[type=submit]")
            check("/jobs/" in page.url, f"the rotation did not go to its progress page: {page.url}")
            page.locator("#outcome").wait_for(timeout=180000)
            text = page.locator("#outcome").inner_text()
            check(f"rotated to {names['config']}.v2" in text, f"the config rotation ended {text!r}")
        finally:
            browser.close()


def main():
    started = time.monotonic()
    prepare("progress-")
    pid = os.getpid()
    names = {"service": f"skprogress-{pid}", "secret": f"skprogress-s-{pid}", "config": f"skprogress-c-{pid}"}
    name = names["service"]
    state_dir = tempfile.mkdtemp(prefix="skprogress-state-")
    server = None
    created = False
    steps = []
    figures = {}
    try:
        server = Server(state_dir, OUT / "progress-server.log")
        build_image()
        created = True
        secret_file = Path(state_dir) / "value"
        secret_file.write_text("first value")
        docker("secret", "create", "--label", f"{LABEL}=1", names["secret"], str(secret_file))
        docker("config", "create", "--label", f"{LABEL}=1", names["config"], str(secret_file))
        docker("service", "create", "--quiet", "--detach=false", "--name", name, "--label", f"{LABEL}=1",
               "--replicas", "1", "--update-monitor", "5s", "--update-failure-action", "rollback",
               "--restart-delay", "1s", "--stop-grace-period", "1s",
               "--secret", names["secret"], "--config", names["config"],
               IMAGE, "/bin/busybox", "sleep", "3600")
        server.wait_ready()
        browse(server.base, lambda runs, _: walk(runs[0], names, steps, figures), prefix="progress-")
        without_scripts_reloads(server.base, names, steps)
        load = figures.get("load")
        if load:
            say(f"figures: Apply → progress page {figures['post_to_page_s'] * 1000:.0f} ms, Apply → first "
                f"deploy line on the page {figures['post_to_first_line_s'] * 1000:.0f} ms "
                f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")
    except Exception as e:
        return outcome("browser progress", steps, started, e)
    finally:
        if created:
            docker("service", "rm", name, check_ok=False)
            # A secret or config is refused while the removed service's tasks still hold it.
            leftovers = [(kind, version) for kind, base in (("secret", names["secret"]), ("config", names["config"]))
                         for version in (base, f"{base}.v2")]
            deadline = time.monotonic() + 30
            while leftovers and time.monotonic() < deadline:
                leftovers = [(kind, version) for kind, version in leftovers
                             if docker(kind, "rm", version, check_ok=False) != version
                             and docker(kind, "inspect", version, check_ok=False) not in ("", "[]")]
                if leftovers:
                    time.sleep(1)
            remove_history(name)
        if server:
            server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
    return outcome("browser progress", steps, started)


if __name__ == "__main__":
    entry(main)
