"""The worker keeps freed C heap for its next query (dataroom/engines/heap.py).

By default glibc hands a block above 128 KiB back to the kernel when it is freed, so an
aggregate's old hash table went back on every resize and the next query faulted it in again:
TPC-H Q1 in a worker that had run the other queries took 1.12x raw DuckDB (11,000 page faults a
query against 3,000); with the worker's thresholds, the same time as raw.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dataroom.catalog import load_catalog
from dataroom.demo_data import generate
from dataroom.engines.supervisor import SupervisedEngine
from dataroom.settings import Settings

PAGES_IN_8_MIB = (8 << 20) // 4096

# A fresh interpreter frees an 8 MiB block, then allocates and fills another: how many pages fault in.
REUSE = textwrap.dedent(
    """
    import ctypes, sys
    from dataroom.engines.heap import keep_freed_heap
    if sys.argv[1] == "keep":
        assert keep_freed_heap()
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    faults = lambda: int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[7])
    size = 8 << 20
    block = libc.malloc(size); libc.memset(block, 1, size); libc.free(block)
    before = faults()
    block = libc.malloc(size); libc.memset(block, 1, size)
    print(faults() - before)
    """
)


def faults_reusing_8_mib(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", REUSE, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


def test_freed_memory_is_reused_without_faulting_it_in_again() -> None:
    assert faults_reusing_8_mib("default") > PAGES_IN_8_MIB * 0.9  # glibc's default: every page again
    assert faults_reusing_8_mib("keep") < PAGES_IN_8_MIB * 0.05


def worker_faults(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


@pytest.fixture(scope="module")
def large_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("heap")
    generate(home, rows=300_000)  # about 2 s
    return home


def test_a_worker_repeating_an_aggregate_reuses_its_hash_table_memory(large_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAROOM_HOME", str(large_home))
    catalog = load_catalog(large_home / "catalog.toml")
    engine = SupervisedEngine(Settings(threads=2, memory_limit="1GB", worker_memory_limit="2GiB"), catalog)
    project = catalog.projects["remediation-acme"]
    sql = "SELECT finding_id, count(*) AS n FROM acme.findings GROUP BY finding_id"  # 300,000 groups
    try:
        assert engine.execute("alice", project, sql).table.num_rows == 300_000
        pid = engine._pools[("alice", project.id)].idle[-1].process.pid
        faults = []
        for _ in range(3):
            before = worker_faults(pid)
            engine.execute("alice", project, sql)
            faults.append(worker_faults(pid) - before)
    finally:
        engine.close()
    # The hash table grows past 4 MiB; without the worker's thresholds each run faulted in
    # 1,700-2,000 pages (measured), with them 3-500.
    assert min(faults) < 600, faults
