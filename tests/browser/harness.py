"""What every browser test of the dashboard shares: the server under test, the browser session
with its screenshots and the errors it saw, and how a test run starts, fails and reports.

A test file keeps only its own walk and fixtures: its `walk(run, ..., steps)` takes the steps
with `stepper(steps)`, and its `main()` makes its server (`fresh_server`) and fixtures (e.g.
`busybox_service`) in a `with` block around `browse(...)`, then reports with `outcome(...)`;
run as a script through `entry(main)`. test_service_form_width.py is the smallest example.

Screenshots go to target/browser-screenshots/PREFIXNN-name.png. Any console error (CSP
violations show there), page error or HTTP error answer a test did not ask for (see
`Run.provoked`) fails it.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "target" / "debug" / "swarmkeeper"
OUT = ROOT / "target" / "browser-screenshots"
PASSWORD = "browser-test-password-1"
IMAGE = "skbrowser:1"
LABEL = "swarmkeeper.browser-test"
VIEWPORT = {"width": 1280, "height": 800}
CHROMIUM_ARGS = [
    "--no-sandbox",  # root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-default-browser-check",
]


class Failure(Exception):
    """A check that did not hold; its message says what was expected and what was seen."""


def say(text):
    print(f"browser-test: {text}", flush=True)


def check(condition, message):
    if not condition:
        raise Failure(message)


def poll(probe, timeout, what, interval=0.25):
    """Calls probe() until it returns something truthy; fails after timeout seconds."""
    end = time.monotonic() + timeout
    last = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= end:
            raise Failure(f"{what} (not within {timeout} s)")
        time.sleep(interval)


def docker(*args, check_ok=True, timeout=120):
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    try:
        done = subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failure(f"docker {' '.join(args)} did not finish within {timeout} s")
    if check_ok and done.returncode != 0:
        raise Failure(f"docker {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_path():
    for candidate in (
        os.environ.get("SWARMKEEPER_CHROMIUM"),
        "/usr/lib/chromium/chromium",
        "/usr/bin/chromium",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise Failure("no chromium: apt-get install chromium (scripts/browser-test.sh does)")


def remove_history(stack):
    """The deploy history revisions a stack's (or lone service's) changes recorded in the
    swarm, and its lock object."""
    for config in docker("config", "ls", "-q", "--filter",
                         f"label=swarmkeeper.revision.stack={stack}", check_ok=False).split():
        docker("config", "rm", config, check_ok=False)
    docker("config", "rm", f"swarmkeeper-lock-{stack}", check_ok=False)


def remove_stack(stack):
    """A stack deployed by a test (`docker stack rm`) and its deploy history."""
    docker("stack", "rm", stack, check_ok=False)
    remove_history(stack)


def greeting_stack(greeting, monitor="1s"):
    """A stack file of one busybox service, `web`, sleeping, whose environment says `greeting`:
    lint-clean, stopped within a second, rolled back on a failed update, watched for `monitor`
    after one."""
    return f"""services:
  web:
    image: {IMAGE}
    command: ["/bin/busybox", "sleep", "3600"]
    environment:
      GREETING: "{greeting}"
    stop_grace_period: 1s
    logging:
      driver: local
      options:
        max-size: 1m
    deploy:
      update_config:
        monitor: {monitor}
        failure_action: rollback
"""


def env_of(service):
    """A service's environment as the engine has it, as JSON text (`["GREETING=one"]`)."""
    return docker("service", "inspect", service, "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Env}}")


def build_image(tag=IMAGE):
    """An image of busybox alone, for services that print or sleep."""
    busybox = Path("/bin/busybox")
    check(busybox.exists(), "/bin/busybox is missing: apt-get install busybox-static")
    with tempfile.TemporaryDirectory(prefix="skbrowser-ctx-") as ctx:
        shutil.copy(busybox, Path(ctx) / "busybox")
        (Path(ctx) / "Dockerfile").write_text("FROM scratch\nCOPY busybox /bin/busybox\n")
        docker("build", "-q", "-t", tag, ctx)


def prepare(prefix):
    """Checks what every test needs and clears this test's old screenshots (PREFIX*.png)."""
    check(BINARY.exists(), f"{BINARY} is missing: cargo build -p swarmkeeper-cli")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise Failure("playwright is not installed: pip install -r tests/browser/requirements.txt")
    chromium_path()
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob(f"{prefix}[0-9][0-9]-*.png"):
        old.unlink()


@contextmanager
def busybox_service(name, *options):
    """A service `name` of one busybox task sleeping an hour (labelled LABEL, stopped within a
    second), running when the block starts; `options` go to `docker service create` before the
    image. Removed with its deploy history when the block ends, whatever happens."""
    build_image()
    try:
        docker("service", "create", "--quiet", "--detach=false", "--name", name, "--label", f"{LABEL}=1",
               "--replicas", "1", "--stop-grace-period", "1s", *options,
               IMAGE, "/bin/busybox", "sleep", "3600")
        yield name
    finally:
        docker("service", "rm", name, check_ok=False)
        remove_history(name)


class Server:
    """`swarmkeeper server` on a free port of 127.0.0.1 with the admin password PASSWORD.

    `base` is the address the browser uses (localhost, which counts as a secure origin, so the
    session cookie's `Secure` holds over plain HTTP); `direct` the same server by IP address."""

    def __init__(self, state_dir, log_path, extra_args=()):
        self.port = free_port()
        self.base = f"http://localhost:{self.port}"
        self.direct = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWARMKEEPER_")}
        env["SWARMKEEPER_ADMIN_PASSWORD"] = PASSWORD
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [str(BINARY), "server", "--listen", f"127.0.0.1:{self.port}", "--state-dir", str(state_dir),
             "--admin-password-file", str(Path(state_dir) / "no-such-file"), *extra_args],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )

    def wait_ready(self, timeout=30):
        def ready():
            if self.proc.poll() is not None:
                raise Failure(f"the server exited with {self.proc.returncode} before answering; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.direct + "/healthz", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        poll(ready, timeout, f"the server answers on {self.direct}/healthz")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                say("the server did not stop within 10 s of SIGTERM; killing it")
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@contextmanager
def fresh_server(name, extra_args=()):
    """A `Server` on a new state directory, its log in OUT/NAME-server.log; stopped and its
    state removed when the block ends, whatever happens. Started, not yet ready: call
    `wait_ready()` once the other fixtures are made."""
    state_dir = tempfile.mkdtemp(prefix=f"sk{name}-state-")
    server = None
    try:
        server = Server(state_dir, OUT / f"{name}-server.log", extra_args)
        yield server
    finally:
        if server:
            server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


def stepper(steps):
    """A walk's `step(label)`: says the step and adds its name to `steps`, which `outcome`
    counts (the last one failed when the walk raised)."""
    def step(label):
        steps.append(label)
        say(f"[{len(steps):2d}] {label}")
    return step


class Run:
    """One browser session: its page, its screenshots (named PREFIXNN-name.png, numbered with
    the other sessions of the same test when they share `shots`) and what went wrong in it."""

    def __init__(self, page, base, prefix="", shots=None):
        self.page = page
        self.base = base
        self.prefix = prefix
        self.shots = [] if shots is None else shots
        self.problems = []
        self.notes = []  # things worth a look that do not fail the test
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.problems.append(f"page error on {page.url}: {e}"))
        page.on("response", self._response)

    def _console(self, msg):
        if msg.type != "error":
            return
        url = (msg.location or {}).get("url", "")
        where = f" at {url}:{msg.location.get('lineNumber')}" if url else ""
        self.problems.append(f"console error on {self.path()}: {msg.text}{where}")

    def _response(self, response):
        if response.status < 400:
            return
        self.problems.append(f"HTTP {response.status} for {response.request.method} {response.url}")

    def provoked(self, since, status):
        """Forgets the HTTP errors with `status` seen since `since`: the test asked for them."""
        kept = [p for p in self.problems[since:]
                if not p.startswith(f"HTTP {status} ") and f"status of {status} " not in p]
        del self.problems[since:]
        self.problems.extend(kept)

    def shot(self, name):
        path = OUT / f"{self.prefix}{len(self.shots) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path.name)

    def goto(self, path):
        response = self.page.goto(self.base + path)
        check(response is not None and response.ok, f"GET {path}: HTTP {response.status if response else '?'}")

    def path(self):
        return self.page.url[len(self.base):] if self.page.url.startswith(self.base) else self.page.url

    def text(self, selector):
        return self.page.locator(selector).inner_text()

    def reload_until(self, probe, timeout, what):
        def again():
            self.page.reload()
            return probe()
        return poll(again, timeout, what, interval=1.0)

    def table(self, selector):
        """The body rows of a table as lists of cell texts."""
        return self.page.eval_on_selector_all(
            f"{selector} tbody tr",
            "rows => rows.map(r => Array.from(r.cells, c => c.innerText.trim()))",
        )

    def log_lines(self):
        return self.page.eval_on_selector_all("#log > div", "rows => rows.map(r => r.textContent)")

    def log_in(self, user, password):
        page = self.page
        self.goto("/login")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", password)
        with page.expect_navigation():
            page.click("button[type=submit]")
        check(not self.path().startswith("/login"), f"{user} could not log in")

    def add_user(self, user, role, password):
        """Adds a user on the Users page (the session must be an admin's)."""
        page = self.page
        self.goto("/users")
        page.fill("form[action='/users'] input[name=username]", user)
        page.select_option("form[action='/users'] select[name=role]", role)
        page.fill("form[action='/users'] input[name=password]", password)
        with page.expect_navigation():
            page.click("form[action='/users'] button[type=submit]")


def browse(base, body, sessions=1, prefix="", timeout_ms=15000):
    """Runs `body(runs, browser)` in a headless chromium with `sessions` separate sessions
    (their own cookies) on the server at `base`, sharing one screenshot numbering.

    On a failure: a FAILED screenshot of the first session, the browser errors seen before it
    and the screenshots taken are printed, and the exception goes on. Afterwards any browser
    error in any session fails the test. Returns the sessions (their notes and shots)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            shots = []
            runs = []
            for _ in range(sessions):
                page = browser.new_context(viewport=VIEWPORT).new_page()
                page.set_default_timeout(timeout_ms)
                runs.append(Run(page, base, prefix, shots))
            try:
                body(runs, browser)
            except Exception:
                try:
                    runs[0].shot("FAILED")
                except Exception:
                    pass
                problems = [p for run in runs for p in run.problems]
                if problems:
                    say("browser errors seen before the failure:\n  " + "\n  ".join(problems))
                say(f"screenshots in {OUT}: {', '.join(shots)}")
                raise
            problems = [p for run in runs for p in run.problems]
            check(not problems, "the browser saw errors:\n  " + "\n  ".join(problems))
            say(f"screenshots in {OUT}: {', '.join(shots)}")
            return runs
        finally:
            browser.close()


def outcome(label, steps, started, error=None):
    """Prints the test's last line ("LABEL: N passed, M failed") and returns its exit status;
    `steps` are the step names the walk reached, the last one failed when `error` is set."""
    if error is not None:
        if not isinstance(error, Failure):
            traceback.print_exc(file=sys.stdout)
        say(f"FAILED: {error}")
        print(f"{label}: {max(len(steps) - 1, 0)} passed, 1 failed", flush=True)
        return 1
    say(f"done in {time.monotonic() - started:.1f} s")
    print(f"{label}: {len(steps)} passed, 0 failed", flush=True)
    return 0


def entry(main):
    """Runs a test's main() as a script. A SIGTERM (a CI timeout, kill) unwinds like an
    exception, so the test's cleanup still runs."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(main())
    except Failure as e:
        say(f"FAILED: {e}")
        sys.exit(1)
