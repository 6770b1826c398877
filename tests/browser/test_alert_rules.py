#!/usr/bin/env python3
"""The alert rules form in a real browser: Debian's chromium driven by Playwright.

Starts `target/debug/swarmkeeper server` (as tests/browser/test_alerts.py does); then, as the
admin, on /alerts: every rule has its fieldset with its switch and figures and their units;
fields that do not read (a duration "soon", a count "five") come back refused, each with its
message next to it, nothing applied; a figure out of range (101 %) likewise; then a rule
switched off and two figures changed are saved and the JSON twin (`GET /api/alerts/rules`)
says so; "Edit as JSON" still works and names the line and column of a mistake.

Screenshots go to target/browser-screenshots/alert-rules-NN-name.png. Any console error, page
error or HTTP error answer the test did not provoke fails it. Run:
python3 tests/browser/test_alert_rules.py (scripts/browser-test.sh installs what it needs).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import PASSWORD, check, entry, say  # noqa: E402
from test_alerts import serve_and_walk  # noqa: E402


def walk(run, receiver, direct, steps):
    page = run.page

    def step(label):
        steps.append(label)
        say(f"[{len(steps):2d}] {label}")

    def rules():
        answer = page.request.get(run.base + "/api/alerts/rules")
        check(answer.status == 200, f"GET /api/alerts/rules answered {answer.status}")
        return answer.json()

    def submit(form, status):
        seen = len(run.problems)
        with page.expect_navigation() as nav:
            page.locator(form).locator("button[type=submit]").click()
        got = nav.value.status if nav.value else None
        check(got == status, f"the form was answered {got}, expected {status}")
        if status >= 400:
            # Asked for: the refusal is the point of the step.
            run.provoked(seen, status)

    def message(field):
        return page.locator(f'#rules-form .error-message[data-field="{field}"]')

    step("log in as admin; every rule has its fieldset, switch and figures with units")
    run.log_in("admin", PASSWORD)
    run.goto("/alerts")
    form = page.locator("#rules-form")
    for rule in ["disk-gc-shortfall", "disk-full-forecast", "node-down", "agent-silent",
                 "service-not-converged", "rolled-back", "restart-loop", "oom-kill",
                 "memory-near-limit", "alert-channel-unusable"]:
        check(form.locator(f"#rule-{rule}").count() == 1, f"no fieldset for {rule}")
        key = rule.replace("-", "_")
        check(form.locator(f'input[type=checkbox][name="{key}.enabled"]').is_checked(),
              f"{rule} is not shown switched on")
    shown = page.input_value('input[name="node_down.keep_firing_for"]')
    check(shown == "0s", f"node_down.keep_firing_for shows {shown!r}")
    shown = page.input_value('input[name="node_down.for"]')
    check(shown == "1m", f"node_down.for shows {shown!r}")
    check(page.input_value('input[name="memory_near_limit.percent"]') == "90", "percent is not 90")
    check("% of the limit" in form.locator("#rule-memory-near-limit").inner_text(), "no unit for percent")
    check(page.input_value('input[name="repeat_interval"]') == "4h", "repeat interval is not 4h")
    before = rules()
    run.shot("form")

    step("fields that do not read: each refused next to itself, nothing applied")
    page.fill('input[name="node_down.for"]', "soon")
    page.fill('input[name="restart_loop.restarts"]', "five")
    page.uncheck('input[name="oom_kill.enabled"]')
    submit("#rules-form", 422)
    check(message("node_down.for").count() == 1, "no message next to node_down.for")
    check("90s, 2m or 1h30m" in message("node_down.for").inner_text(),
          f"the duration message: {message('node_down.for').inner_text()!r}")
    check("five" in message("restart_loop.restarts").inner_text(), "the count message does not name the value")
    check("2 field(s)" in run.text("#rules-errors"), f"the banner: {run.text('#rules-errors')!r}")
    check(page.input_value('input[name="node_down.for"]') == "soon", "what was typed is lost")
    check(not page.is_checked('input[name="oom_kill.enabled"]'), "the switch turned off is shown on again")
    check(rules() == before, "a refused form changed the rules")
    run.shot("refused")

    step("a figure out of range (101 %) is refused at its field")
    page.fill('input[name="node_down.for"]', "5m")
    page.fill('input[name="restart_loop.restarts"]', "5")
    page.fill('input[name="memory_near_limit.percent"]', "101")
    submit("#rules-form", 422)
    check("between 1 and 100" in message("memory_near_limit.percent").inner_text(),
          "no range message next to the percent")
    check(message("node_down.for").count() == 0, "a field that reads is marked")
    check(rules() == before, "a refused form changed the rules")
    run.shot("out-of-range")

    step("a rule switched off and figures changed are saved")
    page.fill('input[name="memory_near_limit.percent"]', "80")
    page.uncheck('input[name="oom_kill.enabled"]')
    submit("#rules-form", 200)
    check(run.path() == "/alerts", f"after saving went to {run.path()}")
    saved = rules()
    check(saved["oom_kill"]["enabled"] is False, f"oom_kill: {saved['oom_kill']}")
    check(saved["node_down"]["for"] == "5m", f"node_down: {saved['node_down']}")
    check(saved["memory_near_limit"]["percent"] == 80, f"memory: {saved['memory_near_limit']}")
    check(saved["restart_loop"] == before["restart_loop"], "an untouched rule changed")
    check(not page.is_checked('input[name="oom_kill.enabled"]'), "the page shows oom_kill on")
    check(page.input_value('input[name="node_down.for"]') == "5m", "the page does not show 5m")
    run.shot("saved")

    step("edit as JSON: a mistake is named by line and column, nothing applied")
    page.click("details summary")
    page.fill("#rules textarea", '{\n  "node_down": {"fro": "5m"}\n}')
    submit("#rules", 422)
    error = run.text("#rules-json-error")
    check("line 2" in error and "fro" in error, f"the JSON error: {error!r}")
    check(rules() == saved, "refused JSON changed the rules")
    run.shot("json-refused")


if __name__ == "__main__":
    entry(lambda: serve_and_walk("alert-rules", walk))
