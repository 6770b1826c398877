#!/usr/bin/env python3
"""Swarm objects from the dashboard in a real browser (Debian's chromium, Playwright), on a
lab swarm of its own (`lab/lab.sh up` at its defaults: a manager and two workers), so that a
drain never touches this machine's swarm:

- an admin creates a secret in the form, a service uses it, and the secret's own page rotates
  it: the service moves to the new version (same file), the old version goes;
- an admin opens a worker's drain preview (it names the task that will move), drains it (the
  task runs elsewhere), and activates it again;
- a viewer sees no change button on those pages, and a POST made by hand with the viewer's
  session and CSRF token is refused (403), changing nothing.

Screenshots go to target/browser-screenshots/objects-NN-name.png. Any console error, page
error or HTTP error answer the test did not ask for fails it. The lab, the server and
everything made go away whatever happens.

Run: python3 tests/browser/test_objects.py as root (scripts/browser-test.sh runs it after
test_dashboard.py). Needs what test_dashboard.py needs, and lab/lab.sh (root).
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402
    BINARY, OUT, PASSWORD, Failure, Server, browse, build_image, check, docker, entry, outcome, poll, prepare,
    say,
)

ROOT = BINARY.parents[2]
VIEWER = "viewer1"
VIEWER_PASSWORD = "viewer-password-123"


def lab(*args):
    done = subprocess.run(["bash", str(ROOT / "lab" / "lab.sh"), *args], capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        raise Failure(f"lab/lab.sh {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def lab_env(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def running_on(service):
    """Hostnames of the nodes where the service's tasks run."""
    out = docker("service", "ps", "--filter", "desired-state=running", "--format",
                 "{{.Node}} {{.CurrentState}}", service)
    return [line.split()[0] for line in out.splitlines() if "Running" in line]


def secret_of(service):
    return docker("service", "inspect", service, "--format",
                  "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}}:{{.File.Name}} {{end}}").split()


def walk(run, viewer_run, names, worker, worker_id, steps):
    page = run.page

    def step(label):
        steps.append(label)
        say(f"[{len(steps):2d}] {label}")

    secret, service, mover = names["secret"], names["service"], names["mover"]

    step("admin: log in, add a viewer")
    run.log_in("admin", PASSWORD)
    run.add_user(VIEWER, "viewer", VIEWER_PASSWORD)

    step("admin: create a secret in the form")
    run.goto("/secrets")
    page.fill("form[action='/secrets'] input[name=name]", secret)
    page.fill("form[action='/secrets'] textarea[name=data]", "first value")
    with page.expect_navigation():
        page.click("form[action='/secrets'] button[type=submit]")
    check(page.locator(f"#objects a[href='/secrets/{secret}']").count() == 1,
          f"the secrets list does not link {secret}")
    run.shot("secret-created")

    step("a service uses it; the secret's page names it")
    docker("service", "create", "--quiet", "--detach=false", "--name", service,
           "--secret", f"source={secret},target=app_pw", "--stop-grace-period", "1s",
           names["image"], "/bin/busybox", "sleep", "3600")
    run.goto(f"/secrets/{secret}")
    check(service in run.text("#users"), f"the secret's page does not name {service}")

    step("rotate it from its page: the service moves to the new version")
    page.fill("#rotate textarea[name=data]", "second value")
    with page.expect_navigation():
        page.click("#rotate button[type=submit]")
    # The rotation's progress page, until its end.
    page.locator("#outcome").wait_for(timeout=120000)
    run.shot("secret-rotated")
    body = page.locator("main").inner_text()
    check(f"{secret}.v2" in body, f"the rotation page does not name {secret}.v2: {body[:500]}")
    check(secret_of(service) == [f"{secret}.v2:app_pw"],
          f"{service} uses {secret_of(service)}, not {secret}.v2 at app_pw")
    check(docker("secret", "inspect", secret, check_ok=False) in ("", "[]"),
          f"the old secret {secret} is still there")

    step("drain a worker: the preview names the task that moves")
    docker("service", "create", "--quiet", "--detach=false", "--name", mover,
           "--constraint", "node.role==worker", "--replicas", "2",
           "--placement-pref", "spread=node.id", "--stop-grace-period", "1s",
           names["image"], "/bin/busybox", "sleep", "3600")
    check(worker in running_on(mover), f"no task of {mover} on {worker}: {running_on(mover)}")
    run.goto(f"/nodes/{worker_id}")
    with page.expect_navigation():
        page.click(f"a[href='/nodes/{worker_id}/drain']")
    moving = run.table("#moving")
    check(any(row[0] == mover for row in moving), f"the drain preview does not list {mover}: {moving}")
    run.shot("drain-preview")
    with page.expect_navigation():
        page.click("form[action$='/availability'] button.danger")
    poll(lambda: worker not in running_on(mover) and len(running_on(mover)) == 2, 90,
         f"{mover}'s tasks to leave {worker}")
    run.goto(f"/nodes/{worker_id}")
    check("drain" in page.locator("dl.facts").first.inner_text(), "the node page does not say drain")
    run.shot("drained")

    step("activate it again")
    with page.expect_navigation():
        page.click("form[action$='/availability'] button[value=active]")
    check(docker("node", "inspect", worker_id, "--format", "{{.Spec.Availability}}") == "active",
          f"{worker} is not active again")

    step("a viewer: no change button, and a POST by hand is refused")
    vpage = viewer_run.page
    viewer_run.log_in(VIEWER, VIEWER_PASSWORD)
    viewer_run.goto(f"/secrets/{secret}.v2")
    check(vpage.locator("button:has-text('Rotate')").count() == 0, "a viewer sees Rotate")
    check(vpage.locator("button:has-text('Remove')").count() == 0, "a viewer sees Remove")
    viewer_run.goto(f"/nodes/{worker_id}")
    check(vpage.locator("form[action$='/availability']").count() == 0,
          "a viewer sees the availability buttons")
    viewer_run.goto(f"/nodes/{worker_id}/drain")
    check(vpage.locator("button.danger").count() == 0, "a viewer sees the Drain button")
    viewer_run.shot("viewer-drain-preview")
    csrf = vpage.locator("main").get_attribute("data-csrf")
    seen = len(viewer_run.problems)
    for path, form in ((f"/nodes/{worker_id}/availability", {"availability": "drain"}),
                       (f"/secrets/{secret}.v2/rotate", {"data": "third"})):
        answer = vpage.request.post(viewer_run.base + path, form={"csrf_token": csrf, **form},
                                    max_redirects=0)
        check(answer.status == 403, f"a viewer's POST {path} answered {answer.status}, not 403")
    del viewer_run.problems[seen:]  # the refusals asked for
    check(docker("node", "inspect", worker_id, "--format", "{{.Spec.Availability}}") == "active",
          "the viewer's drain changed the node")
    check(secret_of(service) == [f"{secret}.v2:app_pw"], "the viewer's rotation changed the service")


def main():
    started = time.monotonic()
    check(os.geteuid() == 0, "lab/lab.sh needs root")
    prepare("objects-")
    name = f"bo{os.getpid() % 100000}"
    server = None
    steps = []
    try:
        env = lab_env(lab("up", "--name", name))
        os.environ["DOCKER_HOST"] = env["LAB_MANAGER_HOST"]
        image = f"{env['LAB_REGISTRY']}/skbrowser-objects:1"
        build_image(image)
        docker("push", "-q", image)
        worker = env["LAB_WORKER1_HOSTNAME"]
        worker_id = docker("node", "inspect", worker, "--format", "{{.ID}}")
        state_dir = tempfile.mkdtemp(prefix="skbrowser-objects-state-")
        server = Server(state_dir, OUT / "objects-server.log")
        server.wait_ready()
        say(f"lab {name} and server on {server.base} ready after {time.monotonic() - started:.1f} s")
        names = {"secret": "bsecret", "service": "bsvc", "mover": "bmover", "image": image}
        browse(server.base, lambda runs, _: walk(runs[0], runs[1], names, worker, worker_id, steps),
               sessions=2, prefix="objects-")
    except Exception as e:
        return outcome("browser objects", steps, started, e)
    finally:
        if server:
            server.stop()
        try:
            lab("down", "--name", name)
        except Failure as e:
            say(f"lab down: {e}")
    return outcome("browser objects", steps, started)


if __name__ == "__main__":
    entry(main)
