"""A worker's memory use, readable by its parent even after the worker died.

A statement that exhausts the worker's address space usually fails cleanly (DuckDB raises, the
worker answers ``memory_limit``), but an allocation failure inside native code that does not
check for it ends in SIGSEGV or SIGABRT. To tell that apart from other crashes, the worker
samples its own address space every few milliseconds into 16 bytes of shared memory (a memfd
the parent created and passed down); after a death the parent reads the last sample.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import time

_LAYOUT = struct.Struct("<QQ")  # (address space when the cap was set, address space now)
SAMPLE_S = 0.005


class MemoryGauge:
    """Parent side: ``MemoryGauge()``; worker side: ``MemoryGauge(fd)`` with the inherited fd."""

    def __init__(self, fd: int | None = None) -> None:
        if fd is None:
            fd = os.memfd_create("dataroom-worker-memory", os.MFD_CLOEXEC)  # the worker gets it through pass_fds
            os.ftruncate(fd, _LAYOUT.size)
        self.fd = fd
        self._map = mmap.mmap(fd, _LAYOUT.size)

    def used_beyond_base(self) -> int:
        """Bytes of address space the worker had taken beyond its base at the last sample."""
        base, now = _LAYOUT.unpack_from(self._map, 0)
        return max(0, now - base) if base else 0

    def start_sampling(self, base: int) -> None:
        """Worker: publish ``base`` and keep publishing the current address space (daemon thread)."""
        _LAYOUT.pack_into(self._map, 0, base, base)
        page = os.sysconf("SC_PAGE_SIZE")

        def sample() -> None:
            with open("/proc/self/statm", "rb", buffering=0) as statm:
                while True:
                    statm.seek(0)
                    _LAYOUT.pack_into(self._map, 0, base, int(statm.read(64).split()[0]) * page)
                    time.sleep(SAMPLE_S)

        threading.Thread(target=sample, name="memory-gauge", daemon=True).start()

    def close(self) -> None:
        self._map.close()
        os.close(self.fd)
