"""A minimal Docker Engine API client over a unix socket (standard library only), for the
benchmarks' fast setup and event bursts. Imported by the other bench/lib scripts."""

import http.client
import json
import os
import socket
import urllib.parse


def socket_path(host=None):
    host = host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not host.startswith("unix://"):
        raise SystemExit(f"only unix:// engines are supported here, not {host}")
    return host[len("unix://"):]


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class Engine:
    """One keep-alive connection; not thread-safe (use one per thread)."""

    def __init__(self, host=None, version="v1.41"):
        self.path = socket_path(host)
        self.prefix = "/" + version
        self.conn = _UnixConnection(self.path)

    def request(self, method, path, body=None, ok=(200, 201, 204, 304), raw=False):
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.conn.request(method, self.prefix + path, body=data, headers=headers)
                resp = self.conn.getresponse()
                payload = resp.read()
                break
            except (http.client.HTTPException, OSError):
                # A dropped keep-alive connection: reconnect once.
                self.conn.close()
                self.conn = _UnixConnection(self.path)
                if attempt == 2:
                    raise
        if resp.status not in ok:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {payload[:300]!r}")
        if payload and not raw and resp.getheader("Content-Type", "").startswith("application/json"):
            return json.loads(payload)
        return payload

    # --- images ---------------------------------------------------------------------
    def tag(self, image, repo, tag):
        q = urllib.parse.urlencode({"repo": repo, "tag": tag})
        self.request("POST", f"/images/{urllib.parse.quote(image, safe='')}/tag?{q}")

    def untag(self, reference):
        """DELETE of a reference that is not the image's last one: an `untag` event only."""
        self.request("DELETE", f"/images/{urllib.parse.quote(reference, safe='')}")

    def images(self):
        return self.request("GET", "/images/json")

    # --- containers -----------------------------------------------------------------
    def create(self, image, cmd, labels=None):
        body = {"Image": image, "Cmd": cmd, "Labels": labels or {},
                "HostConfig": {"NetworkMode": "none"}}
        return self.request("POST", "/containers/create", body)["Id"]

    def start(self, cid):
        self.request("POST", f"/containers/{cid}/start")

    def wait(self, cid):
        return self.request("POST", f"/containers/{cid}/wait")

    def remove(self, cid, force=False):
        self.request("DELETE", f"/containers/{cid}?force={'1' if force else '0'}")

    def close(self):
        self.conn.close()
