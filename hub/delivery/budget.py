"""A partner's budgets kept in PostgreSQL, shared by every delivery process.

`SharedBudget` is the `adapters.base.Budget` the hub gives each adapter:
the partner's `rate_per_second` as one slot after another in
`partner_rates` (two processes together send at the rate, not twice it), and
daily call quotas counted in `partner_quotas` (a restart at noon does not
spend the day's quota again). `SharedCircuit` is the breaker's store: the
partner's row of `partner_health`, so that a circuit one process opens holds
every process, and operators see the state every process acts on.

A database that is away raises DatabaseError from here, unchanged: the
delivery is not attempted, and the consumer waits for the database; it is
never taken for the partner failing.
"""

from __future__ import annotations

import asyncio
import datetime

from hub.delivery.breaker import Change, Circuit, State
from hub.store import budgets
from hub.store.pool import Pool


class SharedBudget:
    """One partner's calls: at most `rate` a second, and daily quotas, over all processes."""

    def __init__(self, pool: Pool, partner: str, rate: float | None) -> None:
        self._pool = pool
        self._partner = partner
        self._interval = 1.0 / rate if rate else 0.0

    async def wait_turn(self) -> None:
        if not self._interval:
            return
        wait = await budgets.next_turn(self._pool, self._partner, self._interval)
        if wait > 0:
            await asyncio.sleep(wait)

    async def take_call(self, site: str, day: datetime.date, allowed: int) -> bool:
        return await budgets.take_call(self._pool, self._partner, site, day, allowed)

    async def use_up(self, site: str, day: datetime.date, calls: int) -> None:
        await budgets.use_up(self._pool, self._partner, site, day, calls)

    async def calls(self, site: str, day: datetime.date) -> int:
        return await budgets.calls(self._pool, self._partner, site, day)


class SharedCircuit:
    """A partner's circuit in its `partner_health` row."""

    def __init__(self, pool: Pool, partner: str) -> None:
        self._pool = pool
        self._partner = partner

    async def read(self) -> tuple[Circuit, float]:
        health, now = await budgets.health(self._pool, self._partner)
        return _circuit(health), now

    async def change(self, how: Change) -> tuple[Circuit, Circuit, float]:
        before, after, now = await budgets.change_health(
            self._pool, self._partner, lambda health, now: _health(how(_circuit(health), now))
        )
        return _circuit(before), _circuit(after), now


def _circuit(health: budgets.Health) -> Circuit:
    return Circuit(
        State(health.state),
        health.failures,
        health.opened_at,
        health.cooldown,
        health.probe_until,
        health.last_error,
    )


def _health(circuit: Circuit) -> budgets.Health:
    return budgets.Health(
        circuit.state.value,
        circuit.failures,
        circuit.opened_at,
        circuit.cooldown,
        circuit.probe_until,
        circuit.last_error,
    )
