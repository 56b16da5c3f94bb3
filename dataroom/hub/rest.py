"""A small client of the Hub as a user: login form, tokens, servers, and code run in a kernel.

Used by the tests and the benchmark, and handy for scripted checks of a running data room::

    user = HubUser.login("http://127.0.0.1:8000", "alice", password)
    token = user.new_token(note="check")
    user.start_server(); kernel = user.start_kernel(token)
    out = kernel.execute("import dataroom; print(dataroom.connect('remediation-acme').sql('SELECT 1'))")

Code executed through :class:`Kernel` runs in the user's spawned server (Jupyter messaging
protocol over the server's kernel websocket), so it sees exactly that server's environment.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import requests


class HubError(RuntimeError):
    pass


@dataclass
class ExecutionResult:
    """What a code cell produced: stdout/stderr text, rich outputs, and the error if any."""

    stdout: str = ""
    stderr: str = ""
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def raise_for_error(self) -> "ExecutionResult":
        if self.error is not None:
            tb = "\n".join(self.error.get("traceback", []))
            raise HubError(f"kernel error {self.error.get('ename')}: {self.error.get('evalue')}\n{tb}\nstdout: {self.stdout}")
        return self


class HubUser:
    """A logged-in Hub user (cookie session from the login form)."""

    def __init__(self, hub_url: str, name: str, session: requests.Session) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.name = name
        self.http = session

    @classmethod
    def login(cls, hub_url: str, name: str, password: str) -> "HubUser":
        """Log in through the Hub's login form (as a browser does); raises HubError when refused."""
        hub_url = hub_url.rstrip("/")
        http = requests.Session()
        page = http.get(f"{hub_url}/hub/login", timeout=30)
        page.raise_for_status()
        xsrf = http.cookies.get("_xsrf", path="/hub/") or http.cookies.get("_xsrf")
        response = http.post(
            f"{hub_url}/hub/login?next=",
            data={"username": name, "password": password, "_xsrf": xsrf or ""},
            allow_redirects=False,
            timeout=30,
        )
        if response.status_code != 302 or not any(c.name.startswith("jupyterhub-session-id") or c.name.startswith("jupyterhub-hub-login") for c in http.cookies):
            raise HubError(f"login as {name} refused ({response.status_code})")
        return cls(hub_url, name, http)

    def _api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        xsrf = self.http.cookies.get("_xsrf", path="/hub/") or self.http.cookies.get("_xsrf")
        if xsrf:
            headers["X-XSRFToken"] = xsrf
        headers.setdefault("Referer", f"{self.hub_url}/hub/")
        return self.http.request(method, f"{self.hub_url}/hub/api/{path}", headers=headers, timeout=60, **kwargs)

    def new_token(self, note: str = "dataroom", scopes: list[str] | None = None, expires_in: int = 3600) -> str:
        """A new API token of this user (all the user's permissions unless ``scopes`` narrows them)."""
        body: dict[str, Any] = {"note": note, "expires_in": expires_in}
        if scopes is not None:
            body["scopes"] = scopes
        response = self._api("POST", f"users/{self.name}/tokens", json=body)
        if response.status_code not in (200, 201):
            raise HubError(f"token request for {self.name} failed: {response.status_code} {response.text[:300]}")
        return response.json()["token"]

    def model(self) -> dict[str, Any]:
        response = self._api("GET", f"users/{self.name}")
        response.raise_for_status()
        return response.json()

    def start_server(self, timeout: float = 120.0) -> str:
        """Start the user's default server and wait until it is ready; returns its URL."""
        response = self._api("POST", f"users/{self.name}/server")
        if response.status_code not in (201, 202, 400):  # 400: already running
            raise HubError(f"starting {self.name}'s server failed: {response.status_code} {response.text[:300]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.model().get("servers", {}).get("")
            if server and server.get("ready"):
                return f"{self.hub_url}{server['url']}"
            if server is None and response.status_code == 400:
                raise HubError(f"{self.name}'s server did not start: {response.text[:300]}")
            time.sleep(0.3)
        raise HubError(f"{self.name}'s server was not ready within {timeout:.0f} s")

    def stop_server(self) -> None:
        response = self._api("DELETE", f"users/{self.name}/server")
        if response.status_code not in (202, 204, 400, 404):
            raise HubError(f"stopping {self.name}'s server failed: {response.status_code}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.model().get("servers", {}).get(""):
            time.sleep(0.3)

    def server_url(self) -> str:
        return f"{self.hub_url}/user/{self.name}/"

    def start_kernel(self, token: str, path: str = "") -> "Kernel":
        """A new kernel in the user's running server (authenticated with ``token``)."""
        base = self.server_url()
        response = requests.post(f"{base}api/kernels", json={"name": "python3", "path": path}, headers={"Authorization": f"token {token}"}, timeout=60)
        if response.status_code not in (200, 201):
            raise HubError(f"starting a kernel failed: {response.status_code} {response.text[:300]}")
        return Kernel(base, response.json()["id"], token)

    def contents(self, token: str, path: str) -> dict[str, Any]:
        response = requests.get(f"{self.server_url()}api/contents/{path}", headers={"Authorization": f"token {token}"}, timeout=60)
        response.raise_for_status()
        return response.json()


class Kernel:
    """One kernel of a Jupyter server, driven over its websocket with the Jupyter protocol."""

    def __init__(self, server_url: str, kernel_id: str, token: str) -> None:
        import websocket  # websocket-client

        self.server_url = server_url
        self.kernel_id = kernel_id
        self.token = token
        self.session = uuid.uuid4().hex
        parsed = urlparse(server_url)
        scheme = "wss" if parsed.scheme == "https" else "ws"
        ws_url = f"{scheme}://{parsed.netloc}{parsed.path}api/kernels/{kernel_id}/channels?session_id={self.session}"
        self.ws = websocket.create_connection(ws_url, header=[f"Authorization: token {token}"], timeout=300)

    def execute(self, code: str, timeout: float = 300.0) -> ExecutionResult:
        """Run ``code``; collects its output until the kernel is idle again."""
        msg_id = uuid.uuid4().hex
        self.ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "username": "dataroom",
                        "session": self.session,
                        "msg_type": "execute_request",
                        "version": "5.3",
                        "date": dt.datetime.now(dt.timezone.utc).isoformat(),
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        result = ExecutionResult()
        replied = idle = False
        deadline = time.monotonic() + timeout
        while not (replied and idle):
            if time.monotonic() > deadline:
                raise HubError(f"no answer from the kernel within {timeout:.0f} s")
            raw = self.ws.recv()
            if isinstance(raw, bytes):  # binary frames carry buffers; not used here
                continue
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["header"]["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    result.stdout += content["text"]
                else:
                    result.stderr += content["text"]
            elif kind in ("display_data", "execute_result", "update_display_data"):
                result.outputs.append({"type": kind, "data": content.get("data", {})})
            elif kind == "error":
                result.error = content
            elif kind == "execute_reply":
                replied = True
                if content.get("status") == "error" and result.error is None:
                    result.error = content
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
        return result

    def shutdown(self) -> None:
        try:
            self.ws.close()
        finally:
            requests.delete(f"{self.server_url}api/kernels/{self.kernel_id}", headers={"Authorization": f"token {self.token}"}, timeout=30)
