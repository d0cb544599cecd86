"""Per-partner circuit breaker: a partner that is down does not burn retries.

`Breaker.admit()` is awaited before every delivery to the partner. Closed, it
lets everything through. After `threshold` transient failures in a row it
opens: deliveries wait (their messages stay unacked in the partner's queue,
so the consumer takes no more) until `cooldown` has passed; then one probe
goes through (half-open): success closes the breaker, failure opens it again
with twice the cooldown (up to `max_cooldown`). Other partners have their
own breakers and are not affected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from enum import StrEnum

import structlog

from hub.ops import metrics

log = structlog.get_logger(__name__)


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class Breaker:
    def __init__(
        self,
        partner: str,
        *,
        threshold: int = 5,
        cooldown: float = 10.0,
        max_cooldown: float = 300.0,
        on_change: Callable[[State, str | None], None] | None = None,
    ) -> None:
        self.partner = partner
        self._on_change = on_change  # told of every change of state (e.g. for operators)
        self.state = State.CLOSED
        self.last_error = ""
        self._threshold = threshold
        self._base = cooldown
        self._cooldown = cooldown
        self._max = max_cooldown
        self._failures = 0
        self._opened_at = 0.0
        self._probe = asyncio.Lock()
        self._changed = asyncio.Event()

    async def admit(self) -> bool:
        """Wait until a delivery may go; True if it is the probe (hold it till `record`)."""
        while True:
            if self.state is State.CLOSED:
                return False
            wait = self._opened_at + self._cooldown - time.monotonic()
            if self.state is State.OPEN and wait > 0:
                await self._sleep(wait)
                continue
            if self._probe.locked():
                await self._sleep(self._cooldown)
                continue
            await self._probe.acquire()
            if self._is_closed():  # closed by another delivery while this one waited
                self._probe.release()
                return False
            self._become(State.HALF_OPEN, None)
            log.info("circuit half-open: probing", partner=self.partner)
            return True

    def _is_closed(self) -> bool:
        return self.state is State.CLOSED

    def succeeded(self, probe: bool) -> None:
        if self.state is not State.CLOSED:
            log.info("circuit closed", partner=self.partner)
            self._become(State.CLOSED, None)
        self._failures, self._cooldown = 0, self._base
        self._release(probe)

    def failed(self, probe: bool, error: str) -> None:
        """A transient failure (a permanent one says nothing about the partner's health)."""
        self.last_error = error
        self._failures += 1
        if probe:
            self._cooldown = min(self._cooldown * 2, self._max)
        if probe or (self.state is State.CLOSED and self._failures >= self._threshold):
            self._opened_at = time.monotonic()
            self._become(State.OPEN, error)
            log.warning(
                "circuit open",
                partner=self.partner,
                failures=self._failures,
                pause_s=self._cooldown,
                error=error,
            )
        self._release(probe)

    def done(self, probe: bool) -> None:
        """Neither success nor transient failure (e.g. skipped, permanent): free the probe."""
        if probe and self.state is State.HALF_OPEN:
            self._become(State.OPEN, None)
            self._opened_at = time.monotonic() - self._cooldown  # probe again at once
        self._release(probe)

    def _become(self, state: State, error: str | None) -> None:
        if state is not self.state:
            self.state = state
            metrics.circuit(self.partner, state)
            if self._on_change is not None:
                self._on_change(state, error)

    def _release(self, probe: bool) -> None:
        if probe and self._probe.locked():
            self._probe.release()
        self._changed.set()
        self._changed = asyncio.Event()

    async def _sleep(self, seconds: float) -> None:
        changed = self._changed
        try:
            async with asyncio.timeout(max(seconds, 0.01)):
                await changed.wait()
        except TimeoutError:
            pass
