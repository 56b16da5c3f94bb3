"""The floor of a large governed transfer: raw DuckDB behind loopback HTTP, ungoverned.

``bench_broker.py`` compares the governed transfer (client → broker → worker → broker → client)
with a local DuckDB ``.pl()``. Part of the difference is not governance but serving the result
from another process at all. This module measures that part alone: a Tornado server in its own
process (the broker's server stack and nothing else: no policy, audit, worker or digest) runs
the same query on raw DuckDB for each request, serializes the result as Arrow IPC and writes it
the way the broker does; the client reads and decodes it the way ``dataroom.client`` does (one
Content-Length buffer from Arrow's pool, then ``to_polars``). ``floor / local`` is the best
ratio any design that serves results to a notebook over HTTP can reach on this machine.

Run as ``python benchmarks/transfer_floor.py <sql> <port>`` (``bench_broker`` starts it).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import polars as pl
import pyarrow as pa
import requests

from dataroom.broker.openapi import ARROW_STREAM
from dataroom.client import _read_body
from dataroom.frames import to_polars


def serve(sql: str, port: int) -> None:
    """Run ``sql`` on raw DuckDB for each ``GET /`` and send the result as the broker does, until killed."""
    import duckdb
    from tornado import web

    con = duckdb.connect()
    con.execute("SET parquet_metadata_cache = true")  # as the room's sessions do

    def ipc() -> pa.Buffer:
        table = con.sql(sql).to_arrow_table()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue()

    class Result(web.RequestHandler):
        async def get(self) -> None:
            payload = ipc()
            self.set_header("Content-Type", ARROW_STREAM)
            self.set_header("Content-Length", str(len(payload)))
            await self.flush()
            await self.request.connection.write(memoryview(payload))  # type: ignore[union-attr]
            self.finish()

    async def main() -> None:
        web.Application([(r"/", Result)]).listen(port, address="127.0.0.1")
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


class FloorServer:
    """The floor server in a subprocess: ``with FloorServer(sql, port) as floor: floor.fetch()``."""

    def __init__(self, sql: str, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/"
        self._process = subprocess.Popen([sys.executable, __file__, sql, str(port)], stdout=subprocess.PIPE, text=True)
        self._http = requests.Session()

    def __enter__(self) -> "FloorServer":
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "ready":
            raise SystemExit("the transfer floor server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()
        self._process.kill()
        self._process.wait()

    def fetch(self) -> pl.DataFrame:
        """One query: HTTP GET, the body into one buffer, IPC decode, Polars (as the client does)."""
        with self._http.get(self.url, stream=True) as response:
            response.raise_for_status()
            data = _read_body(response, None)
        return to_polars(pa.ipc.open_stream(data).read_all())


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
