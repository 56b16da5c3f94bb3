"""Refusal floods: rate-limit refused requests per client, and audit a flood as counts.

Every refused request is audited, but an attacker with a loop must not fill the disk or starve
the audit log (one fsync per request). Each client address has a budget of refusals
(:data:`REFUSALS_PER_CLIENT`, a moving window kept by the ``limits`` library). Within it, each
refusal is recorded on its own as before. Past it, requests that do not carry a token known to be
good are answered ``429`` at once — no Hub lookup, no fsync — and counted; every
:data:`FLUSH_S` seconds the counts are written as one coalesced refusal record per (client,
reason) with ``count`` = how many requests it stands for. A client with a valid token is never
limited by somebody else's flood from the same address (notebook servers share 127.0.0.1).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

REFUSALS_PER_CLIENT = "50/10 seconds"
GOOD_TOKEN_TTL_S = 300
FLUSH_S = 1.0


def token_fingerprint(token: str | None) -> str:
    return hashlib.sha256((token or "").encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True)
class FloodCount:
    client: str
    reason: str
    count: int


class RefusalLimiter:
    """Refusal budget per client, a short memory of good tokens, and the flood counts to flush."""

    def __init__(self, rate: str = REFUSALS_PER_CLIENT) -> None:
        self._rate = parse(rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._good: dict[str, float] = {}  # token fingerprint -> until (monotonic)
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def remember_good(self, token: str | None) -> None:
        with self._lock:
            self._good[token_fingerprint(token)] = time.monotonic() + GOOD_TOKEN_TTL_S

    def flooding(self, client: str, token: str | None) -> bool:
        """True when ``client`` spent its refusal budget and ``token`` is not known to be good."""
        with self._lock:
            until = self._good.get(token_fingerprint(token))
        if until is not None and until > time.monotonic():
            return False
        return not self._limiter.test(self._rate, client)

    def spend(self, client: str) -> None:
        """One refusal of ``client`` was recorded on its own."""
        self._limiter.hit(self._rate, client)

    def count(self, client: str, reason: str) -> None:
        """One request of a flooding client was answered 429 without its own record."""
        with self._lock:
            self._counts[(client, reason)] += 1

    def drain(self) -> list[FloodCount]:
        """The counts since the last drain (to be written as coalesced records)."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
            now = time.monotonic()
            self._good = {k: v for k, v in self._good.items() if v > now}
        return [FloodCount(client, reason, n) for (client, reason), n in sorted(counts.items())]
