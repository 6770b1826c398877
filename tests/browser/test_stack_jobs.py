#!/usr/bin/env python3
"""Stack deploys and rollbacks followed live, a server restart under a running change, and
the service form's volume drivers and tmpfs modes, in a real browser (Debian's chromium,
Playwright).

Starts `target/debug/swarmkeeper server` with a fresh state dir, then as the first admin:

- deploys a stack from the deploy page: the confirmed deploy answers with its job's page,
  the deploy engine's lines appear while it runs, then "succeeded" with a link to the
  revision; a second version likewise; "Roll back to this" on the stack page goes to the
  rollback's job, which ends "succeeded" and the stack runs the first version again;
- deploys a version that is followed for a minute and stops the server (SIGTERM) while the
  job's page follows it; a new server on the same port and state: the open page reloads by
  itself and says the change was interrupted by the shutdown, what Swarm does with the
  rollout (its failure_action: rollback) and links to the history; the revision says
  "interrupted";
- deploys again and kills the server (SIGKILL): after the restart the job's page says the
  change was lost with the server restart and links to the stack's history (HTTP 410);
- creates a service in the form with a named volume given a driver and driver options (a
  `local` tmpfs volume, an option holding a comma, quoted) and a tmpfs mount with mode 1770:
  a mode that is not octal is refused next to the Mounts field first; the task's /cache has
  mode 1770 and /data 750; the edit form shows the mount lines as they were saved.

Screenshots: target/browser-screenshots/stackjobs-NN-name.png. Any console or page error, and
any HTTP error answer the test did not provoke, fails the test. The stacks, the service, the
volume, the histories and the servers are removed whatever happens.

Run: python3 tests/browser/test_stack_jobs.py (scripts/browser-test.sh installs what it needs).
"""

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from harness import (  # noqa: E402
    IMAGE, LABEL, OUT, PASSWORD, Server, browse, build_image, check, docker, entry, env_of, greeting_stack,
    outcome, poll, prepare, remove_history, remove_stack, stepper,
)


class Servers:
    """The server, restarted on the same port and state directory."""

    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.port = harness.free_port()
        self.started = 0
        self.server = None

    def start(self):
        self.started += 1
        saved = harness.free_port
        harness.free_port = lambda: self.port
        try:
            self.server = Server(self.state_dir, OUT / f"stackjobs-server-{self.started}.log")
        finally:
            harness.free_port = saved
        self.server.wait_ready()
        return self.server

    def stop(self, kill=False):
        if not self.server:
            return
        if kill and self.server.proc.poll() is None:
            self.server.proc.kill()
            self.server.proc.wait()
        self.server.stop()
        self.server = None


def forgive_restart(run, since):
    """The errors a restart makes the open page see (its event stream refused, then 404 for a
    job the new server no longer follows): provoked by the test."""
    for status in (404, 410):
        run.provoked(since, status)
    kept = [p for p in run.problems[since:] if "ERR_CONNECTION_REFUSED" not in p and "EventSource" not in p
            and "/events" not in p]
    del run.problems[since:]
    run.problems.extend(kept)


def job_end(run, timeout=180):
    page = run.page
    check(run.path().startswith("/jobs/"), f"the change did not go to its job's page: {run.path()}")
    page.locator("#outcome").wait_for(timeout=timeout * 1000)
    return page.locator("#outcome .badge").inner_text()


def lines_while_running(run, name, timeout=60):
    page = run.page

    def seen():
        try:
            text = page.locator("#progress").inner_text() if page.locator("#progress").count() else ""
            state = page.get_attribute("#job", "data-state")
        except Exception as e:  # the page reloading itself at the job's end
            if "context was destroyed" in str(e):
                return False
            raise
        check(state == "running", f"the change ended before a line of {name} showed: {text!r}")
        return any(line.startswith(f"{name}:") for line in text.splitlines())

    poll(seen, timeout, f"a line of {name} while the change runs", interval=0.1)


def deploy(run, stack, text):
    page = run.page
    run.goto(f"/stacks/deploy?stack={stack}")
    page.fill("input[name=stack]", stack)
    page.fill("textarea[name=compose]", text)
    with page.expect_navigation():
        page.click("button[value=preview]")
    with page.expect_navigation(timeout=60000):
        page.click("#confirm-deploy")


def walk(run, servers, names, steps):
    page = run.page
    stack, service, volume = names["stack"], names["service"], names["volume"]
    web = f"{stack}_web"
    step = stepper(steps)

    step("log in; deploy a stack from the deploy page: its job, lines while it runs, succeeded")
    run.log_in("admin", PASSWORD)
    deploy(run, stack, greeting_stack("one", "3s"))
    lines_while_running(run, web)
    check(job_end(run) == "succeeded", f"the deploy ended {page.locator('#outcome').inner_text()!r}")
    links = page.eval_on_selector_all("#outcome a", "links => links.map(a => a.textContent)")
    check(any(link.startswith("revision ") and link.endswith(f" of {stack}") for link in links),
          f"the outcome does not link its revision: {links}")
    check("GREETING=one" in env_of(web), f"{web} runs {env_of(web)}")
    run.shot("deployed")

    step("a second version, then 'Roll back to this' on the stack page: the rollback's job")
    deploy(run, stack, greeting_stack("two", "1s"))
    check(job_end(run) == "succeeded", "the second deploy did not succeed")
    check("GREETING=two" in env_of(web), f"{web} runs {env_of(web)}")
    run.goto(f"/stacks/{stack}")
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation(timeout=60000):
        page.click("#deploys form[action$='/rollback'] button")
    check(run.path().startswith("/jobs/"), f"the rollback went to {run.path()}, not its job")
    check(page.locator("h1").inner_text().startswith(f"Rollback of stack {stack}"), "the job is not the rollback")
    check(job_end(run) == "succeeded", f"the rollback ended {page.locator('#outcome').inner_text()!r}")
    check("GREETING=one" in env_of(web), f"the rollback left {web} on {env_of(web)}")
    run.shot("rolled-back")

    step("a deploy followed for a minute; SIGTERM the server while its page follows it")
    deploy(run, stack, greeting_stack("three", "60s"))
    lines_while_running(run, web)
    job = run.path()
    since = len(run.problems)
    servers.stop()
    servers.start()
    step("restarted: the open page reloads itself and says interrupted, what Swarm does, where")
    page.locator("#outcome").wait_for(timeout=60000)
    forgive_restart(run, since)
    check(run.path() == job, f"the page went to {run.path()}")
    said = page.locator("#outcome .badge").inner_text()
    check(said == "interrupted", f"the interrupted job says {said!r}")
    notes = page.locator("#notes").inner_text()
    check("interrupted by the server's shutdown" in notes, f"the notes: {notes!r}")
    check("Swarm rolls the service back by itself" in notes, f"the notes do not say what Swarm does: {notes!r}")
    check(page.locator("#gone").count() == 1, "the page does not say its lines went with the restart")
    run.shot("interrupted")
    run.goto(f"/stacks/{stack}")
    revisions = run.table("#deploys")
    check(revisions and revisions[0][4].startswith("interrupted"), f"the newest revision: {revisions[:1]}")

    step("a deploy, then SIGKILL: after the restart the job was lost with it (410), links the history")
    deploy(run, stack, greeting_stack("four", "60s"))
    lines_while_running(run, web)
    job = run.path()
    since = len(run.problems)
    servers.stop(kill=True)
    servers.start()
    page.locator("#lost").wait_for(timeout=60000)
    forgive_restart(run, since)
    check(run.path() == job, f"the page went to {run.path()}")
    check("lost with the server restart" in page.locator("#lost").inner_text(), "the page does not say lost")
    hrefs = page.eval_on_selector_all("#about a", "links => links.map(a => a.getAttribute('href'))")
    check(f"/stacks/{stack}" in hrefs, f"the lost job does not link the history: {hrefs}")
    run.shot("lost")

    step("the form: a tmpfs mode that is not octal is refused next to Mounts, nothing created")
    run.goto("/services/new")
    page.fill("input[name=name]", service)
    page.fill("input[name=image]", IMAGE)
    page.fill("input[name=command]", "/bin/busybox sleep 3600")
    page.fill("textarea[name=labels]", f"{LABEL}=1")
    page.fill("textarea[name=mounts]", "type=tmpfs,target=/cache,tmpfs.mode=999")
    since = len(run.problems)
    with page.expect_navigation():
        page.click("#preview-button")
    run.provoked(since, 422)
    error = page.locator("p[data-field=mounts]").inner_text()
    check("not an octal file mode" in error, f"the Mounts field says {error!r}")
    check(docker("service", "inspect", service, check_ok=False) in ("", "[]"), "a refused form created the service")
    run.shot("mode-refused")

    step("volume driver and options, tmpfs mode 1770: applied, on the node, shown back as saved")
    mounts = (f'type=volume,source={volume},target=/data,volume.driver=local,volume.driver_opts.device=tmpfs,'
              f'"volume.driver_opts.o=size=16m,mode=0750",volume.driver_opts.type=tmpfs\n'
              f'type=tmpfs,target=/cache,tmpfs.size=16M,tmpfs.mode=1770')
    page.fill("textarea[name=mounts]", mounts)
    with page.expect_navigation():
        page.click("#preview-button")
    with page.expect_navigation():
        page.click("#apply")
    check(job_end(run) == "succeeded", f"the creation ended {page.locator('#outcome').inner_text()!r}")
    container = poll(lambda: docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}"),
                     60, "the service's container runs").split()[0]
    modes = docker("exec", container, "/bin/busybox", "stat", "-c", "%a", "/cache", "/data").split()
    check(modes == ["1770", "750"], f"/cache and /data have modes {modes}")
    run.goto(f"/services/{service}/edit")
    shown = page.locator("textarea[name=mounts]").input_value()
    check(shown == mounts.replace("type=volume,source=" + volume + ",target=/data",
                                  "type=volume,target=/data,source=" + volume),
          f"the edit form shows {shown!r}")
    run.shot("edit-mounts")


def main():
    started = time.monotonic()
    prepare("stackjobs-")
    pid = os.getpid()
    names = {"stack": f"skbjobs{pid}", "service": f"skbjobs-svc-{pid}", "volume": f"skbjobs-vol-{pid}"}
    state_dir = tempfile.mkdtemp(prefix="skbjobs-state-")
    servers = Servers(state_dir)
    steps = []
    try:
        build_image()
        server = servers.start()
        browse(server.base, lambda runs, _: walk(runs[0], servers, names, steps), prefix="stackjobs-",
               timeout_ms=30000)
    except Exception as e:
        return outcome("browser (stack jobs)", steps, started, e)
    finally:
        servers.stop()
        remove_stack(names["stack"])
        docker("service", "rm", names["service"], check_ok=False)
        remove_history(names["service"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and docker("volume", "rm", names["volume"], check_ok=False) != names["volume"] \
                and docker("volume", "inspect", names["volume"], check_ok=False) not in ("", "[]"):
            time.sleep(1)
        shutil.rmtree(state_dir, ignore_errors=True)
    return outcome("browser (stack jobs)", steps, started)


if __name__ == "__main__":
    entry(main)
