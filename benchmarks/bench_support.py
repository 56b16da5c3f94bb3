"""What the benchmarks share: demo data at volume, and timing that hits governed and raw alike."""

from __future__ import annotations

import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Interleaved:
    """Milliseconds of two functions run alternately: ``first[i]`` and ``second[i]`` are neighbours in time."""

    first: list[float]
    second: list[float]

    @property
    def medians(self) -> tuple[float, float]:
        return statistics.median(self.first), statistics.median(self.second)

    @property
    def ratio(self) -> float:
        """Median of ``first`` over median of ``second``."""
        first, second = self.medians
        return first / second


def interleaved_turns_ms(fns: Sequence[Callable[[], Any]], repeat: int, before: Callable[[], Any] | None = None) -> list[list[float]]:
    """Milliseconds of each function, run in turns (after one warm-up each), so that machine noise
    hits all alike; ``before``, if given, runs untimed right before each timed run."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, runs in zip(fns, times):
            if before is not None:
                before()
            started = time.perf_counter()
            fn()
            runs.append((time.perf_counter() - started) * 1000)
    return times


def interleaved_runs_ms(first: Callable[[], Any], second: Callable[[], Any], repeat: int) -> Interleaved:
    """Two functions run alternately (:func:`interleaved_turns_ms`)."""
    return Interleaved(*interleaved_turns_ms([first, second], repeat))


def interleaved_medians_ms(first: Callable[[], Any], second: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median milliseconds of two functions run alternately (see :func:`interleaved_runs_ms`)."""
    return interleaved_runs_ms(first, second, repeat).medians


def ratio_interval(samples: Sequence[Interleaved], level: float = 0.9, resamples: int = 2000) -> tuple[float, float]:
    """A bootstrap interval for the geometric mean of the samples' ratios (one sample: its ratio).

    Each resample draws every sample's neighbouring pairs with replacement (a pair stays a pair:
    both sides saw the same moment's load) and recomputes the ratios of medians. On this
    machine a median of 7–11 moves by several per cent between runs; the interval says whether
    a ratio above a goal is more than that noise.
    """
    rng = random.Random(18)  # the same data gives the same interval
    estimates = []
    for _ in range(resamples):
        logs = []
        for sample in samples:
            picks = [rng.randrange(len(sample.first)) for _ in sample.first]
            first = statistics.median(sample.first[i] for i in picks)
            second = statistics.median(sample.second[i] for i in picks)
            logs.append(math.log(first / second))
        estimates.append(math.exp(sum(logs) / len(logs)))
    estimates.sort()
    tail = (1 - level) / 2
    return estimates[int(tail * resamples)], estimates[min(resamples - 1, int((1 - tail) * resamples))]


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    """Median milliseconds of ``fn`` over ``repeat`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)
