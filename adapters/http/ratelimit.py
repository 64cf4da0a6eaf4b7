"""Token-bucket rate limits, in process.

A deployment with several API nodes can share the counts on JetStream (a
counter stream with ``Nats-Incr`` measured 31k increments/s here), see
docs/operations.md.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    def __init__(self, rate_per_second: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = rate_per_second
        self.burst = burst
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._max_keys = max_keys

    def take(self, key: str, cost: float = 1.0, now: float | None = None) -> float:
        """0 when allowed (and spent), else the seconds to wait before retrying."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.rate if self.rate > 0 else 60.0

    def refund(self, key: str, cost: float = 1.0) -> None:
        """Give back what ``take`` spent, for work that turned out not to count (a login that succeeded)."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.tokens = min(self.burst, bucket.tokens + cost)
