"""Real servers on loopback for the API tests, and a recording proxy in front of them.

``start`` runs a server command in a subprocess until a URL answers; ``RecordingProxy``
forwards every request to an upstream chosen by path prefix, records it, can fake
failures for the next requests, and can call a hook once an upstream answer has arrived
but before the client gets it (to kill a client at exactly that point).
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def start(cmd: list[str], ready_url: str, headers: dict | None = None, seconds: float = 120, env: dict | None = None):
    """Run ``cmd`` until ``ready_url`` answers 200; stop it afterwards."""
    log = tempfile.NamedTemporaryFile("w+", prefix="server-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + seconds
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"{cmd[:3]} exited with {proc.returncode}:\n{log.read()[-3000:]}")
            try:
                with urllib.request.urlopen(urllib.request.Request(ready_url, headers=headers or {}), timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                pass
            if time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"{cmd[:3]} did not answer within {seconds} s:\n{log.read()[-3000:]}")
            time.sleep(0.5)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()
        os.unlink(log.name)


class RecordingProxy:
    """A threaded HTTP proxy on 127.0.0.1 that records requests and can fake failures.

    ``upstream`` is one base URL, or a dict of path prefix -> base URL (the longest
    matching prefix wins; "" is the default)."""

    def __init__(self, upstream: str | dict[str, str]):
        routes = upstream if isinstance(upstream, dict) else {"": upstream}
        self.routes = {prefix: urllib.parse.urlsplit(url) for prefix, url in routes.items()}
        self.lock = threading.Lock()
        self.requests: list[dict] = []  # {"method", "path", "body", "status"} for every request that arrived
        self.responses: list[dict] = []  # upstream JSON answers, in order
        self.faults: list[tuple[int, dict]] = []  # (status, extra headers) for the next requests
        # (method, path prefix, hook): the hook runs once an upstream answer to such a
        # request has arrived, before it is sent on.
        self.after: list[tuple[str, str, Callable[[], None]]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _handle(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                is_json = "json" in (self.headers.get("Content-Type") or "")
                body = json.loads(raw) if raw and is_json else raw
                with proxy.lock:
                    fault = proxy.faults.pop(0) if proxy.faults else None
                    proxy.requests.append({"method": self.command, "path": self.path, "body": body,
                                           "status": fault[0] if fault else None})
                if fault:
                    status, headers = fault
                    self._send(status, json.dumps({"error": {"message": f"fake {status}"}}).encode(),
                               {"Content-Type": "application/json", **headers})
                    return
                up = proxy.upstream(self.path)
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=300)
                try:
                    fwd = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                    conn.request(self.command, self.path, body=raw or None, headers=fwd)
                    resp = conn.getresponse()
                    data = resp.read()
                    status, kind = resp.status, resp.getheader("Content-Type") or "application/json"
                finally:
                    conn.close()
                if status == 200 and "json" in kind:
                    with proxy.lock:
                        proxy.responses.append(json.loads(data))
                for method, prefix, hook in list(proxy.after):
                    if self.command == method and self.path.startswith(prefix):
                        hook()
                self._send(status, data, {"Content-Type": kind})

            def _send(self, status, data, headers):
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _handle

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def upstream(self, path: str):
        prefix = max((p for p in self.routes if path.startswith(p)), key=len)
        return self.routes[prefix]

    def fail_next(self, n: int, status: int, retry_after: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self.lock:
            self.faults = [(status, headers)] * n

    def count(self, method: str, prefix: str) -> int:
        with self.lock:
            return sum(r["method"] == method and r["path"].startswith(prefix) for r in self.requests)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.responses.clear()
            self.faults.clear()
            self.after.clear()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)
