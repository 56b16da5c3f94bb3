"""A local Spark Connect server in its own process: pyspark's own server (the JVM it ships),
started once per test session; the tests connect to it as the broker would to a cluster."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

# Runs in the child: start the JVM with the Connect plugin, then wait until the parent closes stdin.
_SERVER = """
import json, sys
from pyspark.sql.connect.session import SparkSession
SparkSession._start_connect_server("local[2]", json.loads(sys.argv[1]))
print("ready", flush=True)
sys.stdin.read()
"""

START_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def spark_connect_server() -> Iterator[str]:
    """Yields the ``sc://`` URL (with its token) of a fresh local server; stops it afterwards."""
    port, token = _free_port(), uuid.uuid4().hex
    conf = {
        "spark.connect.grpc.binding.port": str(port),
        "spark.connect.authenticate.token": token,
        "spark.driver.memory": "1g",
        "spark.sql.shuffle.partitions": "2",
        "spark.ui.enabled": "false",
        "spark.sql.runSQLOnFiles": "false",
    }
    env = {**os.environ, "SPARK_CONNECT_AUTHENTICATE_TOKEN": token, "PYSPARK_PYTHON": sys.executable}
    import json

    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, json.dumps(conf)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"the local Spark Connect server did not start (exit code {proc.poll()})")
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield f"sc://localhost:{port}/;token={token}"
    finally:
        proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
