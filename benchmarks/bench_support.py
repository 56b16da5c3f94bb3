"""What the benchmarks share: demo data at volume, and timing that hits governed and raw alike."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dataroom.demo_data import generate  # noqa: E402


def demo_home(name: str, rows: int) -> Path:
    """``benchmarks/.data/<name>-<rows>``, generated once (8 files per table; 10M rows: about two minutes)."""
    home = ROOT / "benchmarks" / ".data" / f"{name}-{rows}"
    if not (home / "catalog.toml").exists():
        print(f"generating demo data with {rows:,} findings per tenant under {home} ...", flush=True)
        started = time.perf_counter()
        generate(home, rows=rows, files_per_table=8)
        print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)
    return home


def let_the_spare_worker_start() -> None:
    """Wait while the engine's spare worker (a fresh interpreter importing DuckDB, started by the
    first queries) finishes starting, so that its start-up never competes with timed runs."""
    time.sleep(2.0)


def interleaved_medians_ms(first: Callable[[], Any], second: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median milliseconds of two functions run alternately (after one warm-up each), so that
    machine noise hits both alike."""
    first(), second()
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeat):
        for fn, times in ((first, a), (second, b)):
            started = time.perf_counter()
            fn()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(a), statistics.median(b)


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    """Median milliseconds of ``fn`` over ``repeat`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)
