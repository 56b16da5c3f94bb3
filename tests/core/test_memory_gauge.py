"""The worker's memory gauge: what the parent reads after a worker died in native code.

It samples while a statement runs (so a death mid-allocation is answered as the memory limit),
publishes one last sample when the statement ends (so a later idle death is not blamed on the
last statement's peak), and does not wake while the worker is idle.
"""

from __future__ import annotations

import os
import time

from dataroom.engines.gauge import SAMPLE_S, MemoryGauge
from dataroom.engines.worker import mapped_bytes

MB = 2**20


def settle() -> None:
    time.sleep(20 * SAMPLE_S)


def test_the_gauge_follows_a_statement_and_rests_when_idle() -> None:
    parent = MemoryGauge()
    worker = MemoryGauge(os.dup(parent.fd))  # the worker's end, as if inherited
    worker.start_sampling(mapped_bytes())
    settle()
    rest = parent.used_beyond_base()  # the sampling thread's own stack and arena
    with worker.busy():
        block = bytearray(256 * MB)
        settle()
        assert parent.used_beyond_base() >= rest + 200 * MB  # seen while the statement runs
        del block
    settle()
    assert parent.used_beyond_base() < rest + 64 * MB  # the last sample is the end of the statement, not its peak
    idle_block = bytearray(256 * MB)
    settle()
    assert parent.used_beyond_base() < rest + 64 * MB  # idle: no sampling
    del idle_block
    parent.close()
