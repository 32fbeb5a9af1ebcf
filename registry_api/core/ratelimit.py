"""Per-key token buckets, in memory (per worker process: N workers allow N times the rate)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable


@dataclasses.dataclass
class TokenBucket:
    """`rate` tokens per second up to `capacity`; a request takes one."""

    rate: float
    capacity: float
    tokens: float
    stamp: float

    def take(self, now: float) -> float:
        """Take a token; returns 0 on success or the seconds until one is available."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate if self.rate > 0 else float("inf")


class RateLimiter:
    """One bucket per key id, created full on first use."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def take(self, key_id: str, rate: float, burst_s: float) -> float:
        """0 if the request may proceed, else seconds to wait (for Retry-After)."""
        capacity = max(1.0, rate * burst_s)
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None or bucket.rate != rate:
                bucket = self._buckets[key_id] = TokenBucket(rate, capacity, capacity, now)
            return bucket.take(now)
