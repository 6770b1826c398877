"""A `swarmkeeper server` for a dashboard benchmark: started on a free loopback port with a
temporary state directory and a known first-admin password, waited for on /healthz, logged in
(the session cookie and the CSRF token a page carries), stopped at the end.

    with Dashboard(binary, tmp, "bench-password-1") as dash:
        conn = dash.connection()
        conn.request("GET", "/account", headers={"Cookie": dash.cookie})
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import time

from server_services import login


class Dashboard:
    def __init__(self, binary, tmp, password, user="admin"):
        self.binary = binary
        self.tmp = tmp
        self.password = password
        self.user = user
        self.process = None
        self.port = None
        self.cookie = None
        self.csrf = None

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def connection(self, timeout=600):
        """A new keep-alive connection to the server."""
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def start(self):
        """Starts the server (its log in TMP/server.log, no SWARMKEEPER_ variable of the caller
        passed on), waits until /healthz answers, and logs in as the first admin."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWARMKEEPER_")}
        env["SWARMKEEPER_ADMIN_PASSWORD"] = self.password
        tmp = str(self.tmp)
        with open(os.path.join(tmp, "server.log"), "wb") as log:
            self.process = subprocess.Popen(
                [self.binary, "server", "--listen", f"127.0.0.1:{self.port}", "--state-dir",
                 os.path.join(tmp, "state"), "--admin-password-file", os.path.join(tmp, "none")],
                env=env, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                self.connection(timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"the server did not answer on {self.base}: see {tmp}/server.log")
        time.sleep(0.3)
        self.cookie = login(self.base, self.user, self.password)
        conn = self.connection()
        conn.request("GET", "/account", headers={"Cookie": self.cookie})
        page = conn.getresponse().read().decode()
        if 'data-csrf="' not in page:
            raise SystemExit("GET /account: no data-csrf in the page")
        self.csrf = page.split('data-csrf="', 1)[1].split('"', 1)[0]
        return self

    def api_token(self, name="bench"):
        """A new API token (bearer) of the logged-in admin."""
        conn = self.connection()
        conn.request("POST", "/api/tokens", body=json.dumps({"name": name}),
                     headers={"Cookie": self.cookie, "x-csrf-token": self.csrf,
                              "Content-Type": "application/json"})
        resp = conn.getresponse()
        payload = resp.read()
        if resp.status not in (200, 201):
            raise SystemExit(f"POST /api/tokens: HTTP {resp.status}: {payload[:300]!r}")
        return json.loads(payload)["token"]

    def stop(self):
        if self.process:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
            self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
