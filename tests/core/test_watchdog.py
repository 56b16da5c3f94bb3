"""The statement watchdog: it interrupts an overrunning statement on time, never a finished one,
and does not wake per statement (a wake-up takes a core from the query on a 2-core machine)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from dataroom.engines.watchdog import Watchdog


class Expiries:
    def __init__(self) -> None:
        self.at: list[float] = []

    def __call__(self) -> None:
        self.at.append(time.monotonic())


def context_switches(thread: threading.Thread) -> int:
    """The thread's voluntary and involuntary context switches so far (from /proc)."""
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text().splitlines()
    return sum(int(line.split()[1]) for line in status if line.split(":")[0].endswith("ctxt_switches"))


def overrun(watchdog: Watchdog, expired: Expiries, timeout_s: float = 0.2) -> None:
    """A block that runs past its limit: interrupted once, on time."""
    started = time.monotonic()
    with watchdog.armed(timeout_s):
        time.sleep(1.0)
    assert len(expired.at) == 1
    assert timeout_s <= expired.at[0] - started < timeout_s + 0.4


def test_an_overrunning_block_is_interrupted_on_time() -> None:
    expired = Expiries()
    overrun(Watchdog(expired), expired)


def test_a_finished_block_is_never_interrupted() -> None:
    expired = Expiries()
    watchdog = Watchdog(expired)
    for _ in range(50):
        with watchdog.armed(0.1):
            pass
    time.sleep(0.4)  # past every deadline armed above
    assert expired.at == []


def test_a_shorter_limit_after_a_longer_one_is_kept() -> None:
    """The thread waits for the first block's far deadline; the second block's nearer one must wake it."""
    expired = Expiries()
    watchdog = Watchdog(expired)
    with watchdog.armed(60):
        time.sleep(0.05)  # the thread is now waiting until the 60 s deadline
    overrun(watchdog, expired)


def test_statements_with_the_same_limit_do_not_wake_the_thread() -> None:
    existing = set(threading.enumerate())
    watchdog = Watchdog(Expiries())
    (thread,) = set(threading.enumerate()) - existing
    with watchdog.armed(60):
        time.sleep(0.05)
    before = context_switches(thread)
    for _ in range(100):  # like statements: the caller waits (releases the GIL) in and between them
        with watchdog.armed(60):
            time.sleep(0.002)
        time.sleep(0.002)
    assert context_switches(thread) - before <= 2  # was 2 per statement (a notify on arm and on disarm)
