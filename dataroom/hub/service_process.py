"""What every hub-managed data room service process (broker, review) does the same way.

The Hub tells a managed service where to listen through ``JUPYTERHUB_SERVICE_URL`` and under
which prefix through ``JUPYTERHUB_SERVICE_PREFIX``; ``dataroom up`` asks each service to write
its pid to a file (named by an environment variable) so that leftovers can be stopped by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlparse


def service_arguments(prog: str, description: str, default_port: int) -> argparse.ArgumentParser:
    """A parser with the options every service takes, defaulting to what the Hub set."""
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", f"http://127.0.0.1:{default_port}"))
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--ip", default=url.hostname or "127.0.0.1", help="address to listen on (default: from JUPYTERHUB_SERVICE_URL)")
    parser.add_argument("--port", type=int, default=url.port or default_port, help="port (default: from JUPYTERHUB_SERVICE_URL)")
    parser.add_argument("--prefix", default=os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/"), help="URL prefix (default: JUPYTERHUB_SERVICE_PREFIX)")
    parser.add_argument("--log-level", default="INFO")
    return parser


@asynccontextmanager
async def running_until_signalled(pid_file_env: str) -> AsyncIterator[asyncio.Event]:
    """Write the pid file (if asked), yield the event SIGTERM/SIGINT set, remove the file after."""
    pid_file = os.environ.get(pid_file_env)
    if pid_file:
        Path(pid_file).parent.mkdir(parents=True, exist_ok=True)
        Path(pid_file).write_text(str(os.getpid()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        if pid_file:
            Path(pid_file).unlink(missing_ok=True)
