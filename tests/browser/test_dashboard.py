#!/usr/bin/env python3
"""The dashboard in a real browser: Debian's chromium driven by Playwright.

Starts `target/debug/swarmkeeper server` on a free port with a fresh state dir, creates a
service on the machine's swarm that prints numbered lines ("tick N") continuously, then, as the
first admin: logs in, reads the overview, finds the service, follows its live logs (new lines
must arrive, pause must hold them back and resume draw them), rolls the service back through
the confirm() dialog, scales it to 2 replicas, walks nodes, stacks, users, the audit log and
the account page (an API token, shown once, that works against the API), and logs out.

Every page is saved as a full-page screenshot in target/browser-screenshots/NN-name.png, with
the server's log (server.log) and the log lines seen (logs.txt) beside them. Any console error
(CSP violations show there), page error or HTTP error answer fails the test, and so does an
overview or service page wider than a phone (390 px). What is worth a look but not a failure
(log lines out of time order) is printed as a note at the end. The service is removed and the
server stopped whatever happens.

Run: python3 tests/browser/test_dashboard.py (scripts/browser-test.sh installs what it needs
first). Needs: a Docker Engine that is a swarm manager, /bin/busybox (busybox-static),
playwright from requirements.txt (no downloaded browser), and chromium: $SWARMKEEPER_CHROMIUM,
else Debian's /usr/lib/chromium/chromium (what /usr/bin/chromium starts), else
/usr/bin/chromium.
"""

import json
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402,F401  (re-exported for tests that import them from here)
    BINARY, CHROMIUM_ARGS, IMAGE, LABEL, OUT, PASSWORD, Failure, Run, Server, browse, build_image,
    check, chromium_path, docker, entry, free_port, outcome, poll, prepare, say,
)

TICKER = 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.2; done'
# "TASK | tick N", or "TIME TASK | tick N" with timestamps on.
TICK = re.compile(r"^(?:\S+ )?(\S+) \| tick (\d+)\s*$")


def remove_leftovers():
    """Services of earlier runs whose process is gone (killed before its cleanup)."""
    for line in docker("service", "ls", "--filter", f"label={LABEL}", "--format", "{{.Name}}").splitlines():
        m = re.fullmatch(r"skbrowser-(\d+)", line.strip())
        if m and not Path(f"/proc/{m.group(1)}").exists():
            say(f"removing leftover service {line.strip()}")
            docker("service", "rm", line.strip(), check_ok=False)


def service_spec(name):
    return json.loads(docker("service", "inspect", name, "--format", "{{json .}}"))


def service_env(name):
    return service_spec(name)["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env") or []


def order_note(run, how, lines):
    """Notes a backlog that is not in time order. Here the tasks ran one after the other
    (stop-first), so in time order each task's lines form one block."""
    tasks = [task for task, _ in task_ticks(lines)]
    blocks = [t for i, t in enumerate(tasks) if i == 0 or tasks[i - 1] != t]
    if len(blocks) != len(set(blocks)):
        run.notes.append(
            f"logs {how}: the lines of tasks that ran one after the other are interleaved "
            f"({len(blocks)} blocks for {len(set(blocks))} tasks, see logs.txt): the backlog is not merged in time order"
        )


def time_key(text):
    """An engine time (RFC 3339, up to nine fraction digits, trailing zeros dropped) as a key
    that sorts like the time."""
    whole, _, fraction = text.rstrip("Z").partition(".")
    return (whole, fraction.ljust(9, "0"))


def task_ticks(lines):
    """(task, N) of each "TASK | tick N" line."""
    out = []
    for line in lines:
        m = TICK.match(line)
        if m:
            out.append((m.group(1), int(m.group(2))))
    return out


def walk(run, name, node_id, hostname, server, steps):
    page = run.page

    def step(label):
        steps.append(label)
        say(f"[{len(steps):2d}] {label}")

    step("login page; wrong password refused; log in as admin")
    run.goto("/services")
    check(run.path().startswith("/login"), f"/services without a session should go to /login, went to {run.path()}")
    run.shot("login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "not-the-password")
    seen = len(run.problems)
    with page.expect_navigation():
        page.click("button[type=submit]")
    check(page.locator(".error-message").count() == 1, "a wrong password shows no error message")
    # The refused login may answer 401, which the browser also logs as a console error.
    del run.problems[seen:]
    run.shot("login-refused")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    # The login page sends back to the page asked for first.
    check(run.path().startswith("/services"), f"after login expected /services, got {run.path()}")
    cookies = page.context.cookies()
    session = [c for c in cookies if c["name"].startswith("__Host-")]
    check(session, f"no __Host- session cookie after login: {[c['name'] for c in cookies]}")
    check(all(c["secure"] and c["httpOnly"] for c in session), f"session cookie not Secure+HttpOnly: {session}")

    step("overview shows this node's card")
    run.goto("/")
    cards = page.locator("#node-cards .card")
    check(cards.count() >= 1, "the overview has no node card")
    check(hostname in page.locator("#node-cards").inner_text(), f"no card for node {hostname!r}")
    check(page.locator(f'#node-cards a[href="/nodes/{node_id}"]').count() == 1, "the node card does not link to /nodes/ID")
    run.shot("overview")

    step("services list: filter, open the service")
    run.goto("/services")
    row_link = page.locator("#services tbody a", has_text=re.compile(f"^{re.escape(name)}$"))
    check(row_link.count() == 1, f"{name} is not listed on /services")
    page.fill("input.filter", name)
    visible = page.eval_on_selector_all("#services tbody tr", "rows => rows.filter(r => !r.hidden).map(r => r.cells[0].innerText.trim())")
    check(visible == [name], f"filtering by {name!r} leaves {visible}")
    run.shot("services")
    with page.expect_navigation():
        row_link.click()
    check(run.path() == f"/services/{name}", f"clicking the service went to {run.path()}")
    page.locator("#replicas", has_text="1/1").wait_for(timeout=20000)
    check(page.locator("form[action$='/rollback'] button").is_enabled(), "Roll back is disabled although Swarm has a previous spec")
    run.shot("service")

    step("live logs: new lines arrive")
    with page.expect_navigation():
        page.click("a.button:has-text('Logs')")
    check(run.path().startswith(f"/logs/{name}"), f"the Logs button went to {run.path()}")
    # Lines are "TASK | tick N", TASK being name.slot.taskid@node; only the current task's
    # lines by default (the replaced one's with "Earlier tasks"). Follow its numbers.
    running = docker("service", "ps", name, "--filter", "desired-state=running", "--format", "{{.ID}}", "--no-trunc")
    check(running, "the service has no running task")
    task_id = running.splitlines()[0][:12]

    def running_ticks():
        return [n for task, n in task_ticks(run.log_lines()) if f".{task_id}@" in task or task.endswith(f".{task_id}")]
    first = poll(running_ticks, 15, f"the logs page shows lines of the running task {task_id} in #log")
    start_count, start_max = len(run.log_lines()), max(first)

    def grown():
        t = running_ticks()
        count = len(run.log_lines())
        return count > start_count and max(t) > start_max and (count, max(t))
    first_lines = run.log_lines()
    order_note(run, "without timestamps", first_lines)
    count, top = poll(grown, 10, f"new lines after the first {start_count} (task {task_id} at tick {start_max})")
    say(f"     {start_count} lines, task {task_id} at tick {start_max}; then {count} lines, tick {top}")
    check(re.search(r"\d+ lines?", run.text("#counter")), f"counter shows {run.text('#counter')!r}")
    check(run.text("#logstatus") == "streaming", f"status is {run.text('#logstatus')!r}, not 'streaming'")
    run.shot("logs")

    step("live logs: pause holds lines back, resume draws them")
    pause = page.locator("#pause")
    check(pause.is_enabled() and pause.inner_text() == "Pause", "no enabled Pause button")
    pause.click()
    check(pause.inner_text() == "Resume", f"after Pause the button says {pause.inner_text()!r}")
    held = len(run.log_lines())
    page.locator("#logstatus", has_text=re.compile(r"paused: [1-9]")).wait_for(timeout=5000)
    time.sleep(1.0)
    check(len(run.log_lines()) == held, "lines were drawn while paused")
    status = run.text("#logstatus")
    run.shot("logs-paused")
    pause.click()
    check(pause.inner_text() == "Pause", "after Resume the button does not say Pause")
    poll(lambda: len(run.log_lines()) > held, 5, f"resume draws the held lines ({status})")
    check(run.text("#logstatus") == "streaming", f"after resume the status is {run.text('#logstatus')!r}")
    by_task = {}
    for task, n in task_ticks(run.log_lines()):
        by_task.setdefault(task, []).append(n)
    for task, values in by_task.items():
        gaps = [(a, b) for a, b in zip(values, values[1:]) if b != a + 1]
        check(not gaps, f"lines of {task} skipped or repeated around pause/resume: {gaps[:5]}")

    step("live logs: Timestamps restarts the stream with a time on each line")
    page.check("input[name=timestamps]")
    page.locator("#log .ts").first.wait_for(timeout=10000)
    # The stream starts again with each task's backlog, then live lines: read once a line newer
    # than any seen before has arrived.
    poll(lambda: any(n > top for task, n in task_ticks(run.log_lines()) if f".{task_id}@" in task), 10, f"a line newer than tick {top} with timestamps on")
    check("timestamps=1" in page.url, f"the page URL does not keep the choice: {page.url}")
    rows = page.eval_on_selector_all(
        "#log > div", "rows => rows.map(r => [r.querySelector('.ts') ? r.querySelector('.ts').textContent.trim() : '', r.textContent])"
    )
    check(all(ts for ts, _ in rows), "a line without a timestamp while Timestamps is on")
    back = [(a, b) for a, b in zip(rows, rows[1:]) if time_key(b[0]) < time_key(a[0])]
    check(not back, f"logs with timestamps: {len(back)} line(s) older than the line above them, first {back[:1]!r}")
    order_note(run, "with timestamps", [text for _, text in rows])
    (OUT / "logs.txt").write_text(
        "without timestamps, as first shown:\n" + "\n".join(first_lines) + "\n\nwith timestamps:\n" + "\n".join(text for _, text in rows) + "\n"
    )
    run.shot("logs-timestamps")

    # Roll back before scaling: a scale is a spec update too, after which Swarm's previous spec
    # is the one before the scale (Roll back would undo the scale, not the V=2 update).
    step("roll back: cancelling the confirm() does nothing, accepting rolls back")
    with page.expect_navigation():
        page.click(f"h1 a[href='/services/{name}']")
    check(run.path() == f"/services/{name}", f"the logs page's title link went to {run.path()}")
    check("V=2" in service_env(name), "sanity: the service should have V=2 before the roll back")
    messages = []

    def dismiss(dialog):
        messages.append(dialog.message)
        dialog.dismiss()
    page.once("dialog", dismiss)
    page.click("form[action$='/rollback'] button")
    poll(lambda: messages, 5, "Roll back asks for confirmation")
    check(f"Roll {name} back" in messages[0], f"unexpected confirm text {messages[0]!r}")
    time.sleep(1.0)
    check(run.path() == f"/services/{name}" and "V=2" in service_env(name), "a cancelled Roll back still rolled back")

    def accept(dialog):
        messages.append(dialog.message)
        dialog.accept()
    page.once("dialog", accept)
    with page.expect_navigation():
        page.click("form[action$='/rollback'] button")
    check(run.path() == f"/services/{name}", f"after Roll back the browser is on {run.path()}")
    poll(lambda: "V=2" not in service_env(name), 30, f"docker service inspect shows V=2 gone after Roll back")
    state = run.reload_until(
        lambda: re.search(r"rollback \w+", run.text("#facts")), 30, "the service page shows a rollback update state (in words)"
    ).group(0)
    say(f"     update state {state}, env now {service_env(name)}")
    run.reload_until(
        lambda: "rollback completed" in run.text("#facts") and "1/1" in run.text("#replicas"),
        60, "the roll back completes (rollback completed, 1/1)",
    )
    check(page.locator("#badges .badge", has_text="rolled back").count() == 1, "no 'rolled back' badge after the roll back")
    run.shot("service-rolled-back")

    step("scale to 2 replicas")
    page.fill("input[name=replicas]", "2")
    with page.expect_navigation():
        page.click("form[action$='/scale'] button")
    check(run.path() == f"/services/{name}", f"after Scale the browser is on {run.path()}")
    spec = service_spec(name)["Spec"]
    check(spec["Mode"]["Replicated"]["Replicas"] == 2, f"docker says {spec['Mode']} after scaling to 2")
    t = time.monotonic()
    run.reload_until(lambda: run.text("#replicas").strip() == "2/2", 30, "the service page shows 2/2 replicas")
    say(f"     2/2 after {time.monotonic() - t:.1f} s")
    check(page.locator("#tasks tbody tr", has_text="running").count() >= 2, "fewer than 2 running tasks listed")
    run.shot("service-scaled")

    step("nodes list and node page")
    run.goto("/nodes")
    check(page.locator("#nodes tbody tr", has_text=hostname).count() == 1, f"/nodes does not list {hostname}")
    run.shot("nodes")
    with page.expect_navigation():
        page.click(f"#nodes a[href='/nodes/{node_id}']")
    check(run.path() == f"/nodes/{node_id}", f"the node link went to {run.path()}")
    check(hostname in page.locator("main").inner_text(), f"the node page does not name {hostname}")
    run.shot("node")

    step("stacks and the deploy form")
    run.goto("/stacks")
    check(page.locator("#stacks").count() == 1, "/stacks has no #stacks table")
    run.shot("stacks")
    with page.expect_navigation():
        page.click("a.button:has-text('Deploy a stack')")
    check(run.path() == "/stacks/deploy", f"'Deploy a stack' went to {run.path()}")
    check(page.locator("main form textarea").count() >= 1, "the deploy page has no text area for the stack file")
    run.shot("stack-deploy")

    step("users")
    page.click("header nav a[href='/users']")
    page.wait_for_url(run.base + "/users")
    rows = run.table("#users")
    check(any(r[0] == "admin" and "active" in r[3] for r in rows), f"/users does not list an active admin: {rows}")
    run.shot("users")

    step("audit log lists the roll back and the scale by admin")
    page.click("header nav a[href='/audit']")
    page.wait_for_url(run.base + "/audit")
    rows = run.table("#audit")
    mine = [r for r in rows if len(r) >= 5 and r[3] == name]
    check(any(r[1] == "admin" and r[2] == "scale" and "replicas=2" in r[4] for r in mine), f"no scale by admin in the audit log: {mine}")
    check(any(r[1] == "admin" and r[2] == "rollback" for r in mine), f"no rollback by admin in the audit log: {mine}")
    check(sum(1 for r in mine if r[2] == "rollback") == 1, f"the cancelled roll back was audited too: {mine}")
    run.shot("audit")

    step("account: an API token is shown once and works")
    page.click("header .me a[href='/account']")
    page.wait_for_url(run.base + "/account")
    page.fill("input[name=name]", "browser test")
    with page.expect_navigation():
        page.click("button:has-text('Create token')")
    token = page.locator("#new-token code").inner_text().strip()
    check(len(token) >= 20, f"the new token looks wrong: {token!r}")
    run.shot("account-token")
    request = urllib.request.Request(server.direct + "/api/services", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as r:
        body = r.read().decode()
    check(name in body, f"GET /api/services with the token does not list {name}")
    run.goto("/account")
    check(page.locator("#new-token").count() == 0 and token not in page.content(), "the token is shown a second time")
    check(page.locator("#tokens tbody tr", has_text="browser test").count() == 1, "the token is not listed on /account")
    run.shot("account")

    step("a phone-sized window (390 px): overview and service page")
    page.set_viewport_size({"width": 390, "height": 844})
    for path, label in (("/", "narrow-overview"), (f"/services/{name}", "narrow-service")):
        run.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        run.shot(label)
        check(width <= 390, f"{path} is {width} px wide in a 390 px window (scrolls sideways)")
    page.set_viewport_size({"width": 1280, "height": 800})

    step("the system's dark setting: a dark page, the chart drawn in its colours")
    page.emulate_media(color_scheme="dark")
    run.goto(f"/nodes/{node_id}")
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    check(dark == "rgb(20, 24, 29)", f"with prefers-color-scheme: dark the page background is {dark}")
    if page.locator("svg.chart text").count():
        ink = page.evaluate("getComputedStyle(document.querySelector('svg.chart text')).fill")
        check(ink == "rgb(152, 162, 174)", f"the chart's labels are {ink} on the dark page")
    run.shot("dark-node")
    page.emulate_media(color_scheme="light")

    step("the favicon: named by the pages, served without a login, cached")
    icon = page.locator("link[rel=icon]").get_attribute("href")
    check(icon == "/favicon.ico", f"the page names {icon!r} as its icon, not /favicon.ico")
    with urllib.request.urlopen(server.direct + "/favicon.ico", timeout=10) as r:
        kind, cache = r.headers.get("Content-Type"), r.headers.get("Cache-Control") or ""
    check(kind == "image/svg+xml", f"/favicon.ico is {kind}, not image/svg+xml")
    check("max-age" in cache, f"/favicon.ico is not cached (Cache-Control: {cache!r})")

    step("log out")
    with page.expect_navigation():
        page.click("header form[action='/logout'] button")
    check(run.path().startswith("/login"), f"after Log out the browser is on {run.path()}")
    run.goto("/audit")
    check(run.path().startswith("/login"), f"/audit after logging out went to {run.path()}, not /login")


def main():
    started = time.monotonic()
    prepare("")
    for old in OUT.glob("*"):
        if old.is_file() and old.suffix in (".log", ".txt"):
            old.unlink()

    name = f"skbrowser-{os.getpid()}"
    node_id = docker("info", "--format", "{{.Swarm.NodeID}}")
    check(node_id, "this engine is not in a swarm (scripts/ensure-engine.sh makes it one)")
    hostname = docker("node", "inspect", "self", "--format", "{{.Description.Hostname}}")
    remove_leftovers()
    state_dir = tempfile.mkdtemp(prefix="skbrowser-state-")
    server = None
    created = False
    steps = []
    try:
        server = Server(state_dir, OUT / "server.log")
        build_image()
        say(f"creating service {name}")
        created = True  # from here on, remove it whatever happens
        docker("service", "create", "--quiet", "--detach=false", "--name", name, "--label", f"{LABEL}=1",
               "--log-driver", "local", "--replicas", "1", "--update-monitor", "2s", "--rollback-monitor", "2s",
               "--stop-grace-period", "1s", IMAGE, "/bin/busybox", "sh", "-c", TICKER)
        docker("service", "update", "--quiet", "--detach=false", "--env-add", "V=2", name)
        check("V=2" in service_env(name) and service_spec(name).get("PreviousSpec"), "the update left no previous spec")
        server.wait_ready()
        say(f"server on {server.base}, service ready after {time.monotonic() - started:.1f} s")
        runs = browse(server.base, lambda runs, _: walk(runs[0], name, node_id, hostname, server, steps))
    except Exception as e:
        say(f"server log: {OUT / 'server.log'}")
        return outcome("browser", steps, started, e)
    finally:
        if created:
            docker("service", "rm", name, check_ok=False)
        if server:
            server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
    for note in runs[0].notes:
        say(f"note: {note}")
    return outcome("browser", steps, started)


if __name__ == "__main__":
    entry(main)
