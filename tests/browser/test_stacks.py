#!/usr/bin/env python3
"""The stack deploy page in a real browser: a deploy is shown as a diff before it runs.

Starts `target/debug/swarmkeeper server` (as test_dashboard.py does, with its helpers), logs in
as the first admin, opens the deploy page from the stacks list, pastes a one-service stack
file and reviews it: the page must list the service as `create` and its network as `create`
while nothing exists yet in the swarm. Confirming deploys it through the deploy engine as a job
whose page shows it succeeded. The file is then changed (one environment value): the review must show
the service as `restart` with the changed field (`GREETING=one → GREETING=two`), and the stack
must still run the old value until the change is confirmed. The stack page then lists both
revisions. The stack and its history are removed whatever happens.

Screenshots: target/browser-screenshots/stacks-NN-name.png. Run: python3 tests/browser/test_stacks.py
(scripts/browser-test.sh installs what it needs first).
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402
    PASSWORD, browse, build_image, check, docker, entry, env_of, fresh_server, greeting_stack, outcome,
    poll, prepare, remove_stack, stepper,
)


def walk(run, stack, steps):
    page = run.page
    web = f"{stack}_web"
    step = stepper(steps)

    def services():
        return docker("service", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={stack}")

    def diff_rows():
        return run.table("#diff-services")

    def job_outcome():
        check(run.path().startswith("/jobs/"), f"the confirmed deploy went to {run.path()}, not its job")
        # The page reloads itself at the job's end, with the outcome.
        page.locator("#outcome").wait_for(timeout=120000)
        said = page.locator("#outcome .badge").all_inner_texts()
        check(said == ["succeeded"], f"the job's outcome says {said}")

    step("log in, open the deploy page from the stacks list")
    run.goto("/stacks")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    check(run.path().startswith("/stacks"), f"after login expected /stacks, got {run.path()}")
    with page.expect_navigation():
        page.click("a.button:has-text('Deploy a stack')")
    check(page.locator("#confirm-deploy").count() == 0, "a confirm button before any review")

    step("review a new stack: every object is `create`, nothing exists yet")
    page.fill("input[name=stack]", stack)
    page.fill("textarea[name=compose]", greeting_stack("one"))
    with page.expect_navigation():
        page.click("button[value=preview]")
    rows = diff_rows()
    check([r[:2] for r in rows] == [[web, "create"]], f"the review lists {rows}")
    objects = page.locator("#diff-objects").inner_text()
    check(f"network {stack}_default: create" in objects, f"the review's objects: {objects!r}")
    check(not services(), "the review deployed something")
    run.shot("review-new")

    step("confirm: the deploy runs as a job followed on its page, and succeeds")
    with page.expect_navigation(timeout=120000):
        page.click("#confirm-deploy")
    job_outcome()
    check("GREETING=one" in env_of(web), f"{web} runs {env_of(web)}")
    run.shot("deployed")

    step("review a change: `restart` with the changed field, still not applied")
    run.goto(f"/stacks/deploy?stack={stack}")
    page.fill("textarea[name=compose]", greeting_stack("two"))
    with page.expect_navigation():
        page.click("button[value=preview]")
    rows = diff_rows()
    check(len(rows) == 1 and rows[0][:2] == [web, "restart"], f"the review lists {rows}")
    check("GREETING=one → GREETING=two" in rows[0][2], f"the change shown: {rows[0][2]!r}")
    check("GREETING=one" in env_of(web), "the review changed the service")
    run.shot("review-change")

    step("confirm the change")
    with page.expect_navigation(timeout=120000):
        page.click("#confirm-deploy")
    job_outcome()
    check("GREETING=two" in env_of(web), f"{web} runs {env_of(web)}")

    step("the stack page lists both revisions")
    run.goto(f"/stacks/{stack}")
    revisions = poll(lambda: run.table("#deploys"), 10, "the stack page lists its deploys")
    check(len(revisions) == 2, f"the stack page lists {revisions}")
    run.shot("stack")


def main():
    started = time.monotonic()
    prepare("stacks-")
    stack = f"skbstack{os.getpid()}"
    steps = []
    try:
        build_image()
        with fresh_server("stacks") as server:
            server.wait_ready()
            browse(server.base, lambda runs, _: walk(runs[0], stack, steps), prefix="stacks-", timeout_ms=30000)
    except Exception as e:
        return outcome("browser (stacks)", steps, started, e)
    finally:
        remove_stack(stack)
    return outcome("browser (stacks)", steps, started)


if __name__ == "__main__":
    entry(main)
