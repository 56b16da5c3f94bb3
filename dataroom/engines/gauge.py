"""A worker's memory use, readable by its parent even after the worker died.

A statement that exhausts the worker's address space usually fails cleanly (DuckDB raises, the
worker answers ``memory_limit``), but an allocation failure inside native code that does not
check for it ends in SIGSEGV or SIGABRT. To tell that apart from other crashes, the worker
samples its own address space every 20 ms while a statement runs, into 16 bytes of shared memory
(a memfd the parent created and passed down); after a death the parent reads the last sample.

Why 20 ms: the parent asks whether the worker had taken half its budget (at least 0.5 GiB;
2 GiB by default). Memory a statement touches grows by about 2 GB/s on the 2-core machine
(page faults), so the last sample misses at most some 40 MB of it; address space reserved
without touching it appears at once, whatever the interval. Sampling every 5 ms cost a 27 ms
scan 0.07-0.26 ms (the sampling thread's wake-ups take a core from DuckDB), 20 ms nothing measurable.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_LAYOUT = struct.Struct("<QQ")  # (address space when the cap was set, address space now)
SAMPLE_S = 0.02


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
        """Worker: publish ``base``, then the current address space every ``SAMPLE_S`` while
        :meth:`busy` (a daemon thread that sleeps while the worker is idle)."""
        _LAYOUT.pack_into(self._map, 0, base, base)
        page = os.sysconf("SC_PAGE_SIZE")
        self._busy = threading.Event()

        def sample() -> None:
            with open("/proc/self/statm", "rb", buffering=0) as statm:
                while True:
                    statm.seek(0)
                    _LAYOUT.pack_into(self._map, 0, base, int(statm.read(64).split()[0]) * page)
                    if self._busy.is_set():
                        time.sleep(SAMPLE_S)
                    else:  # one sample after the statement ended, then sleep until the next one
                        self._busy.wait()

        threading.Thread(target=sample, name="memory-gauge", daemon=True).start()

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Worker: sample while a statement runs."""
        self._busy.set()
        try:
            yield
        finally:
            self._busy.clear()

    def close(self) -> None:
        self._map.close()
        os.close(self.fd)
