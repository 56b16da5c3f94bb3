"""Results cross from a worker to the broker as sealed shared memory, not through the socket.

The worker writes the result's Arrow IPC stream straight into a memfd and seals it
(no write, grow or shrink; no more seals), then passes the descriptor over the socket
(SCM_RIGHTS). The broker checks the seals before it trusts a byte, maps the file read-only and
reads the table from the mapping without a copy. Because the seals forbid writes, the bytes the
audit record's digest covers are the bytes the broker sends, even if the worker — which runs
hostile SQL — were compromised afterwards.
"""

from __future__ import annotations

import fcntl
import mmap
import os
from multiprocessing import reduction
from multiprocessing.connection import Connection

import pyarrow as pa

SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


class UnsealedResult(RuntimeError):
    """The worker sent a result that could still change: refused, never read."""


def write_sealed(table: pa.Table) -> tuple[int, int]:
    """Worker: ``table`` as one IPC stream in a sealed memfd; returns (descriptor, size).

    Written with ``write`` calls, not through a mapping: the kernel fills the file's pages as it
    copies (a fresh mapping would fault on every page), and the size need not be known first.
    """
    fd = os.memfd_create("dataroom-result", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        with os.fdopen(fd, "wb", closefd=False, buffering=0) as sink:
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            size = sink.tell()
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
    except BaseException:
        os.close(fd)
        raise
    return fd, size


def send_sealed(conn: Connection, fd: int) -> None:
    """Worker: pass the sealed result to the broker (SCM_RIGHTS) and drop our descriptor."""
    try:
        reduction.send_handle(conn, fd, os.getppid())
    finally:
        os.close(fd)


def receive_table(conn: Connection, size: int) -> tuple[pa.Table, pa.Buffer]:
    """Broker: the table and its IPC bytes (a read-only mapping), after checking the seals."""
    fd = reduction.recv_handle(conn)
    try:
        if fcntl.fcntl(fd, fcntl.F_GET_SEALS) & SEALS != SEALS or os.fstat(fd).st_size != size:
            raise UnsealedResult("the engine's result was not sealed: refused")
        mapping = mmap.mmap(fd, size, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    buffer = pa.py_buffer(mapping)
    return pa.ipc.open_stream(buffer).read_all(), buffer
