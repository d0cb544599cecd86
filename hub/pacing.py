"""Pacing what repeats: backoff delays, and log lines of an error that keeps coming.

Every loop that tries again (a reconnect, a probe of the database, a handler
that fails) waits `backoff(n)` before the n-th try: exponential, capped, with
full jitter below the cap, so that many processes that lost the same server
do not come back in step. A loop that meets the same error again and again
logs it through `Repeats`: the first time at once, then at most once per
interval with how many were left out, so that an outage costs a few lines a
minute, not a gigabyte.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any


def backoff(n: int, first: float = 0.5, cap: float = 30.0) -> float:
    """Seconds to wait before the n-th retry (n >= 1): up to first * 2**(n-1), capped.

    Jitter takes the wait anywhere from half to all of that, so that waits still
    grow (no tight loop) and retries of many processes spread out.
    """
    ceiling: float = min(cap, first * 2.0 ** min(max(n, 1) - 1, 30))
    return ceiling * random.uniform(0.5, 1.0)


class Repeats:
    """Logs an event the first time, then once per `interval` with a count of the others.

    Keyed by the caller (e.g. the event and the error's type), so that two different
    errors are both seen at once.
    """

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self._interval = interval
        self._clock = clock
        self._last: dict[object, tuple[float, int]] = {}

    def log(self, emit: Callable[..., Any], key: object, event: str, **fields: Any) -> bool:
        """Call `emit(event, **fields)` unless the same key was logged within the interval."""
        now = self._clock()
        last, left_out = self._last.get(key, (None, 0))
        if last is not None and now - last < self._interval:
            self._last[key] = (last, left_out + 1)
            return False
        if left_out:
            fields["repeated"] = left_out
        self._last[key] = (now, 0)
        if len(self._last) > 1000:  # keys are error kinds, few; never grow without bound
            self._last.clear()
        emit(event, **fields)
        return True
