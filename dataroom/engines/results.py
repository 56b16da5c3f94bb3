"""Results cross from a worker to the broker as bytes the worker can no longer change.

A small result (at most :data:`INLINE_MAX_BYTES` of Arrow IPC) travels in a message on the
socket: the broker reads it into its own memory. A larger one is written straight into a memfd
and sealed (no write, grow or shrink; no more seals), and the descriptor is passed over the
socket (SCM_RIGHTS). The broker checks the seals before it trusts a byte, maps the file read-only
and reads the table from the mapping without a copy. Either way the bytes the audit record's
digest covers are the bytes the broker sends, even if the worker — which runs hostile SQL — were
compromised afterwards: a copy in the broker's memory, or a file nobody can write.

Small results skip the memfd because its set-up costs more than the copy: creating, sealing,
passing and mapping it took 0.09 ms for a one-row result, the message 0.02 ms.
"""

from __future__ import annotations

import fcntl
import mmap
import os
from dataclasses import dataclass
from multiprocessing import reduction
from multiprocessing.connection import Connection

import pyarrow as pa
from blake3 import blake3

# Below this, hashing on one thread is faster than starting the others (measured: 200 KB 37 µs
# on one, 66 µs on all; 2 MB 330 µs on one, 245 µs on all).
PARALLEL_DIGEST_BYTES = 1 << 20
SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
# Results up to this size travel in a socket message; larger ones in a sealed memfd.
INLINE_MAX_BYTES = 64 << 10


class RefusedResult(RuntimeError):
    """The worker sent a result the broker will not read (the worker is not used again)."""


class UnsealedResult(RefusedResult):
    """The worker sent a memfd it could still change: refused, never read."""


@dataclass(frozen=True)
class WrittenResult:
    """Worker: a finished result, either its bytes (small) or a sealed memfd the sender owns."""

    size: int
    inline: bytes | None = None
    fd: int | None = None


class _SpillingFile:
    """The IPC stream's destination: memory up to :data:`INLINE_MAX_BYTES`, then a memfd.

    Written with ``write`` calls, not through a mapping: the kernel fills the file's pages as it
    copies (a fresh mapping would fault on every page), and the size need not be known first.
    """

    def __init__(self) -> None:
        self.memory: bytearray | None = bytearray()
        self.fd: int | None = None
        self._size = 0
        self.closed = False

    def write(self, data) -> int:
        size = memoryview(data).nbytes
        if self.memory is not None and len(self.memory) + size <= INLINE_MAX_BYTES:
            self.memory += data
        else:
            if self.fd is None:  # the result outgrew a message: on into shared memory
                self.fd = os.memfd_create("dataroom-result", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
                self._write_fd(self.memory)
                self.memory = None
            self._write_fd(data)
        self._size += size
        return size

    def _write_fd(self, data) -> None:
        view = memoryview(data).cast("B")
        while view:  # a short write is continued
            view = view[os.write(self.fd, view) :]

    def tell(self) -> int:
        return self._size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def discard(self) -> None:
        self.close()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class ResultWriter:
    """Worker: a result's Arrow IPC stream written batch by batch, in memory or into a memfd.

    The session hands each batch over as DuckDB produces it, so the copy into shared memory
    overlaps the query's execution (DuckDB's threads compute the next batch meanwhile). Nothing
    leaves before :meth:`finish` (which seals a memfd); :meth:`discard` drops a result the
    session refused.
    """

    def __init__(self) -> None:
        self._file: _SpillingFile | None = None
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self.rows = 0

    def open(self, schema: pa.Schema) -> None:
        self._file = _SpillingFile()
        self._writer = pa.ipc.new_stream(self._file, schema)

    def write(self, batch: pa.RecordBatch) -> None:
        assert self._writer is not None, "open() first"
        self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def finish(self) -> WrittenResult:
        """End the stream; a memfd is sealed (the caller sends it with :func:`send_result`)."""
        assert self._writer is not None and self._file is not None, "open() first"
        file = self._file
        try:
            self._writer.close()
            file.close()
            if file.fd is None:
                return WrittenResult(file.tell(), inline=bytes(file.memory or b""))
            fcntl.fcntl(file.fd, fcntl.F_ADD_SEALS, SEALS)
        except BaseException:
            self.discard()
            raise
        fd, file.fd = file.fd, None
        return WrittenResult(file.tell(), fd=fd)

    def discard(self) -> None:
        if self._file is not None:
            self._file.discard()


def write_result(table: pa.Table) -> WrittenResult:
    """Worker: a whole ``table`` as one IPC stream, finished."""
    writer = ResultWriter()
    writer.open(table.schema)
    try:
        for batch in table.to_batches():
            writer.write(batch)
    except BaseException:
        writer.discard()
        raise
    return writer.finish()


def result_digest(ipc: pa.Buffer | memoryview | bytes) -> str:
    """The audit record's ``result_digest`` of the IPC bytes sent: ``blake3:<hex>``.

    BLAKE3 (256-bit, the ``blake3`` package) on all cores for large results: 50 MB in about 7 ms
    on this machine, against 30 ms for SHA-256, which was a third of a large result's governed
    overhead. ``b3sum`` recomputes it from a saved result. Records written before this change
    carry a bare SHA-256 hex digest.
    """
    data = memoryview(ipc)
    threads = blake3.AUTO if data.nbytes >= PARALLEL_DIGEST_BYTES else 1
    return "blake3:" + blake3(data, max_threads=threads).hexdigest()


def send_result(conn: Connection, result: WrittenResult) -> None:
    """Worker: the result's bytes in a message, or its sealed memfd (SCM_RIGHTS), whose descriptor we then drop."""
    if result.inline is not None:
        conn.send_bytes(result.inline)
        return
    assert result.fd is not None
    try:
        reduction.send_handle(conn, result.fd, os.getppid())
    finally:
        os.close(result.fd)


def receive_table(conn: Connection, size: int, inline: bool) -> tuple[pa.Table, pa.Buffer]:
    """Broker: the table and its IPC bytes (a copy in our memory, or a read-only mapping of a sealed memfd)."""
    if inline:
        if size > INLINE_MAX_BYTES:
            raise RefusedResult(f"the engine sent a {size:,}-byte result in a message (at most {INLINE_MAX_BYTES:,}): refused")
        try:
            data = conn.recv_bytes(INLINE_MAX_BYTES)
        except ConnectionError:
            raise  # the worker went away: the caller tells a crash from running out of memory
        except OSError as exc:  # longer than allowed: the connection is out of step
            raise RefusedResult("the engine's result message was longer than allowed: refused") from exc
        if len(data) != size:
            raise RefusedResult("the engine's result message was not the size it announced: refused")
        buffer = pa.py_buffer(data)
    else:
        fd = reduction.recv_handle(conn)
        try:
            if fcntl.fcntl(fd, fcntl.F_GET_SEALS) & SEALS != SEALS or os.fstat(fd).st_size != size:
                raise UnsealedResult("the engine's result was not sealed: refused")
            mapping = mmap.mmap(fd, size, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        buffer = pa.py_buffer(mapping)
    return pa.ipc.open_stream(buffer).read_all(), buffer
