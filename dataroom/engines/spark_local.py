"""A local Spark Connect server: pyspark's own (the JVM and jars it ships), for development,
tests and benchmarks, in its own process.

    python -m dataroom.engines.spark_local [--port 15002] [--driver-memory 2g]

prints the ``sc://`` URL (with a fresh authentication token) to set as ``DATAROOM_SPARK_REMOTE``
and serves until interrupted. Production points the room at a cluster's Spark Connect server.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

# Runs in the child: start the JVM with the Connect plugin, say so, serve until stdin closes.
_SERVER = """
import json, sys
from pyspark.sql.connect.session import SparkSession
SparkSession._start_connect_server(sys.argv[2], json.loads(sys.argv[1]))
print("ready", flush=True)
sys.stdin.read()
"""
START_TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_connect_server(
    *, master: str = "local[2]", driver_memory: str = "1g", shuffle_partitions: int = 2, port: int | None = None
) -> Iterator[str]:
    """Yields the ``sc://localhost:<port>/;token=...`` URL of a fresh local server; stops it afterwards."""
    port, token = port or free_port(), uuid.uuid4().hex
    conf = {
        "spark.connect.grpc.binding.port": str(port),
        "spark.connect.authenticate.token": token,
        "spark.driver.memory": driver_memory,
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.ui.enabled": "false",
        "spark.sql.runSQLOnFiles": "false",
    }
    env = {**os.environ, "SPARK_CONNECT_AUTHENTICATE_TOKEN": token, "PYSPARK_PYTHON": sys.executable}
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER, json.dumps(conf), master], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the local Spark Connect server did not start (exit code {process.poll()}); is Java 17 installed?")
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the local Spark Connect server did not listen in time") from None
                time.sleep(0.2)
        yield f"sc://localhost:{port}/;token={token}"
    finally:
        if process.stdin is not None:
            process.stdin.close()  # the child's read returns, it exits and stops the JVM
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run a local Spark Connect server (pyspark's own) until interrupted.")
    parser.add_argument("--port", type=int, default=15002)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="2g")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly on SIGTERM too (the JVM goes with us)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with local_connect_server(master=args.master, driver_memory=args.driver_memory, shuffle_partitions=4, port=args.port) as url:
        print(f"DATAROOM_SPARK_REMOTE='{url}'", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
