"""An OPA server for tests: the real ``opa`` binary when it is on PATH, otherwise a TEST DOUBLE.

No OPA binary can be installed on our CI machines, so the double speaks the part of OPA's REST
API the data room uses (``POST /v1/data/<path>`` with ``{"input": ...}`` → ``{"result": ...}``,
``GET /health``) over real HTTP and evaluates the same policy files with regopy. It stands in
for OPA; it is not a second implementation of the policies.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import requests

from dataroom.hub.launcher import free_port
from dataroom.rego import PolicyBundle, PolicyError

__all__ = ["OpaDouble", "free_port", "opa_server"]


class OpaDouble(ThreadingHTTPServer):
    """TEST DOUBLE of an OPA server loaded with ``policy_dir`` (entry points given up front)."""

    def __init__(self, port: int, policy_dir: Path, entrypoints: list[str]) -> None:
        self.bundle = PolicyBundle(policy_dir, entrypoints)
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: OpaDouble

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._reply(200 if self.path.startswith("/health") else 404, {})

    def do_POST(self) -> None:
        if not self.path.startswith("/v1/data/"):
            return self._reply(404, {"code": "not_found"})
        rule = self.path.removeprefix("/v1/data/").split("?")[0].replace("/", ".")
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        try:
            result = self.server.bundle.evaluate(rule, body.get("input"))
        except PolicyError as exc:
            return self._reply(500, {"code": "internal_error", "message": str(exc)})
        self._reply(200, {} if result is None else {"result": result})


@contextmanager
def opa_server(policy_dir: Path, entrypoints: list[str]) -> Iterator[str]:
    """Yield the base URL of a running OPA (real if installed, else the double); stop it after."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    opa = shutil.which("opa")
    if opa:
        proc = subprocess.Popen([opa, "run", "--server", "--addr", f"127.0.0.1:{port}", str(policy_dir)])
        try:
            for _ in range(100):
                try:
                    if requests.get(f"{url}/health", timeout=0.2).ok:
                        break
                except requests.ConnectionError:
                    time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(10)
        return
    server = OpaDouble(port, policy_dir, entrypoints)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
