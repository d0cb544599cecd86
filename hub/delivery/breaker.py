"""Per-partner circuit breaker, shared by every delivery process: a partner that is down
does not burn retries.

`Breaker.admit()` is awaited before every delivery to the partner. Closed, it
lets everything through. After `threshold` transient failures in a row it
opens: deliveries wait (their messages stay unacked in the partner's queue,
so the consumer takes no more) until `cooldown` has passed; then one probe
goes through (half-open): success closes the breaker, failure opens it again
with twice the cooldown (up to `max_cooldown`). Other partners have their
own breakers and are not affected.

The circuit itself lives in a `CircuitStore`: in PostgreSQL
(`hub.delivery.budget.SharedCircuit`, the `partner_health` row) so that
when one process opens it every process pauses, and only one of them probes;
`LocalCircuit` keeps it in memory, for tests without a database. Reads are
cached for `fresh_for` seconds, so a closed circuit costs no query per
delivery; changes are atomic read-modify-writes in the store, timed by the
store's clock. A store that cannot be reached raises DatabaseError from
`admit()`: it is not taken for the partner being down.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import structlog

from hub.ops import metrics

log = structlog.get_logger(__name__)

# How long a process may hold the probe before another may take it (it died, say).
PROBE_LEASE = 30.0


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True, slots=True)
class Circuit:
    """A partner's circuit; times are the store's clock, in seconds since the epoch."""

    state: State = State.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    cooldown: float = 0.0  # the pause of the current opening (0: none yet)
    probe_until: float = 0.0
    last_error: str | None = None


Change = Callable[[Circuit, float], Circuit]


class CircuitStore(Protocol):
    async def read(self) -> tuple[Circuit, float]:
        """The circuit, and the store's clock now."""
        ...

    async def change(self, how: Change) -> tuple[Circuit, Circuit, float]:
        """Apply `how(circuit, now)` atomically: (before, after, now)."""
        ...


class LocalCircuit:
    """A circuit in this process's memory (tests without a database)."""

    def __init__(self) -> None:
        self._circuit = Circuit()

    async def read(self) -> tuple[Circuit, float]:
        return self._circuit, time.time()

    async def change(self, how: Change) -> tuple[Circuit, Circuit, float]:
        before, now = self._circuit, time.time()
        self._circuit = how(before, now)
        return before, self._circuit, now


class Breaker:
    def __init__(
        self,
        partner: str,
        *,
        threshold: int = 5,
        cooldown: float = 10.0,
        max_cooldown: float = 300.0,
        store: CircuitStore | None = None,
        fresh_for: float = 1.0,
    ) -> None:
        self.partner = partner
        self._store: CircuitStore = store if store is not None else LocalCircuit()
        self._threshold = threshold
        self._base = cooldown
        self._max = max_cooldown
        self._fresh_for = fresh_for
        self._seen = Circuit()
        self._seen_now = 0.0  # the store's clock at `_seen_at`
        self._seen_at = -float("inf")  # monotonic
        self._changed = asyncio.Event()

    @property
    def state(self) -> State:
        """The state as this process last saw it."""
        return self._seen.state

    @property
    def last_error(self) -> str:
        return self._seen.last_error or ""

    async def admit(self) -> bool:
        """Wait until a delivery may go; True if it is the probe (hand it back with
        `succeeded`, `failed` or `done`)."""
        while True:
            circuit, now = await self._read()
            if circuit.state is State.CLOSED:
                return False
            wait = circuit.opened_at + circuit.cooldown - now
            if circuit.state is State.HALF_OPEN:
                wait = circuit.probe_until - now
            if wait > 0:
                await self._sleep(min(wait, self._fresh_for))
                continue
            before, after, _ = await self._change(self._take_probe)
            if after.state is State.HALF_OPEN and after != before:
                log.info("circuit half-open: probing", partner=self.partner)
                return True
            # Closed meanwhile, or the probe is another process's: look again.

    @staticmethod
    def _take_probe(circuit: Circuit, now: float) -> Circuit:
        due = (circuit.state is State.OPEN and circuit.opened_at + circuit.cooldown <= now) or (
            circuit.state is State.HALF_OPEN and circuit.probe_until <= now
        )
        if not due:
            return circuit
        return dataclasses.replace(circuit, state=State.HALF_OPEN, probe_until=now + PROBE_LEASE)

    async def succeeded(self, probe: bool) -> None:
        seen = self._seen
        if not probe and seen.state is State.CLOSED and seen.failures == 0:
            return  # nothing to change: no write per delivery

        def close(circuit: Circuit, now: float) -> Circuit:
            if circuit.state is State.CLOSED and circuit.failures == 0:
                return circuit
            return Circuit(last_error=circuit.last_error)

        await self._change(close)

    async def failed(self, probe: bool, error: str) -> None:
        """A transient failure (a permanent one says nothing about the partner's health)."""

        def count(circuit: Circuit, now: float) -> Circuit:
            failures = circuit.failures + 1
            cooldown = circuit.cooldown or self._base
            if probe:
                cooldown = min(cooldown * 2, self._max)
            if probe or (circuit.state is State.CLOSED and failures >= self._threshold):
                return Circuit(State.OPEN, failures, now, cooldown, 0.0, error)
            return dataclasses.replace(circuit, failures=failures, last_error=error)

        before, after, _ = await self._change(count)
        if after.state is State.OPEN and after.opened_at != before.opened_at:
            log.warning(
                "circuit open",
                partner=self.partner,
                failures=after.failures,
                pause_s=after.cooldown,
                error=error,
            )

    async def done(self, probe: bool) -> None:
        """Neither success nor transient failure (e.g. skipped, permanent): free the probe."""
        if not probe:
            return

        def again(circuit: Circuit, now: float) -> Circuit:
            if circuit.state is not State.HALF_OPEN:
                return circuit
            # Open, its pause over: the next delivery probes at once.
            return dataclasses.replace(
                circuit, state=State.OPEN, opened_at=now - circuit.cooldown, probe_until=0.0
            )

        await self._change(again)

    async def _read(self) -> tuple[Circuit, float]:
        age = time.monotonic() - self._seen_at
        if age < self._fresh_for:
            return self._seen, self._seen_now + age
        circuit, now = await self._store.read()
        self._see(circuit, now)
        return circuit, now

    async def _change(self, how: Change) -> tuple[Circuit, Circuit, float]:
        before, after, now = await self._store.change(how)
        self._see(after, now)
        self._changed.set()  # wake this process's waiters: look again
        self._changed = asyncio.Event()
        return before, after, now

    def _see(self, circuit: Circuit, now: float) -> None:
        if circuit.state is not self._seen.state:
            metrics.circuit(self.partner, circuit.state)
            if circuit.state is State.CLOSED:
                log.info("circuit closed", partner=self.partner)
        self._seen, self._seen_now, self._seen_at = circuit, now, time.monotonic()

    async def _sleep(self, seconds: float) -> None:
        changed = self._changed
        try:
            async with asyncio.timeout(max(seconds, 0.01)):
                await changed.wait()
        except TimeoutError:
            pass
