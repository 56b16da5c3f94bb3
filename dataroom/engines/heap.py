"""The worker's C heap: keep freed memory for the next query instead of handing it back at once.

DuckDB allocates its buffers through its own jemalloc, but much of an operator's working memory
(an aggregate's hash table, for one) comes from glibc's ``malloc``. glibc returns the top of its
heap to the kernel as soon as more than ``M_TRIM_THRESHOLD`` is free there, and serves blocks
above ``M_MMAP_THRESHOLD`` from fresh mappings it unmaps on ``free``. Both start at 128 KiB and
rise only as a process frees large blocks, so a long-lived process (raw DuckDB in a notebook)
drifts up to 32 MiB / 64 MiB and keeps its pages, while a worker's limits depend on what it happened
to run first. Measured on TPC-H Q1 after a worker had run the other queries: every hash-table
resize gave its old table back to the kernel and the next query faulted it in again (11,000 page
faults a query against 3,000 for raw DuckDB, +15 ms, 1.12x raw); with the limits below, 400-1,800
faults and the same time as raw.

:func:`keep_freed_heap` sets both to where glibc's own adjustment ends, from the start. The cost
is memory an idle worker keeps: at most 64 MiB free at the top of its heap (glibc returns any
more at once); after a 600,000-group aggregate, an idle worker held 125 MB instead of 110 MB.
"""

from __future__ import annotations

import ctypes

# mallopt(3) parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit, and the trim threshold its adjustment pairs with it
MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES


def keep_freed_heap() -> bool:
    """Set glibc's trim and mmap thresholds for this process; False where there is no ``mallopt``."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except AttributeError:  # not glibc (e.g. macOS): nothing to tune
        return False
    results = [mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)]
    return all(results)  # mallopt returns 1 on success
