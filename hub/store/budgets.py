"""Queries of what every delivery process shares about a partner: its rate, its daily
call quotas and its circuit.

Each is one atomic statement (or one short transaction holding one row), timed
by the database's clock, so that processes on different hosts agree and a
restart forgets nothing:

- the rate: `partner_rates.next_call`, the earliest start of the next call;
  `next_turn()` takes the next free slot and says how long to wait for it;
- the quota: `partner_quotas.used` per partner, site and UTC day, counted up
  by `take_call()` only while under the limit;
- the circuit: the partner's `partner_health` row, changed by `change_health()`
  under a row lock.

Every query waits for a connection at most `ACQUIRE_TIMEOUT`; a database that
is away raises DatabaseError.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from hub.store.pool import Pool, connection_of


async def next_turn(pool: Pool, partner: str, interval: float) -> float:
    """Take the partner's next call slot, `interval` seconds after the last one taken;
    the seconds to wait until it (0 or more)."""
    async with connection_of(pool) as connection:
        wait = await connection.fetchval(
            "INSERT INTO partner_rates AS r (partner, next_call)"
            " VALUES ($1, clock_timestamp() + make_interval(secs => $2))"
            " ON CONFLICT (partner) DO UPDATE SET next_call ="
            " greatest(r.next_call, clock_timestamp()) + make_interval(secs => $2)"
            " RETURNING extract(epoch FROM next_call - clock_timestamp())::float8 - $2",
            partner,
            interval,
        )
    return max(0.0, float(wait))


async def take_call(pool: Pool, partner: str, site: str, day: datetime.date, allowed: int) -> bool:
    """Count one call to `site` on `day` if fewer than `allowed` are counted."""
    async with connection_of(pool) as connection:
        used = await connection.fetchval(
            "INSERT INTO partner_quotas AS q (partner, site, day, used)"
            " SELECT $1, $2, $3, 1 WHERE $4 >= 1"
            " ON CONFLICT (partner, site, day) DO UPDATE SET used = q.used + 1 WHERE q.used < $4"
            " RETURNING used",
            partner,
            site,
            day,
            allowed,
        )
    return used is not None


async def use_up(pool: Pool, partner: str, site: str, day: datetime.date, calls: int) -> None:
    async with connection_of(pool) as connection:
        await connection.execute(
            "INSERT INTO partner_quotas AS q (partner, site, day, used) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (partner, site, day) DO UPDATE SET used = greatest(q.used, $4)",
            partner,
            site,
            day,
            calls,
        )


async def calls(pool: Pool, partner: str, site: str, day: datetime.date) -> int:
    async with connection_of(pool) as connection:
        used = await connection.fetchval(
            "SELECT used FROM partner_quotas WHERE partner = $1 AND site = $2 AND day = $3",
            partner,
            site,
            day,
        )
    return int(used or 0)


@dataclass(frozen=True, slots=True)
class Health:
    """A partner's circuit as stored; times in seconds since the epoch (0: none)."""

    state: str = "closed"
    failures: int = 0
    opened_at: float = 0.0
    cooldown: float = 0.0
    probe_until: float = 0.0
    last_error: str | None = None


_COLUMNS = (
    "extract(epoch FROM now())::float8 AS now, h.state, h.failures,"
    " coalesce(extract(epoch FROM h.opened_at)::float8, 0) AS opened_at,"
    " coalesce(h.cooldown_s, 0) AS cooldown,"
    " coalesce(extract(epoch FROM h.probe_until)::float8, 0) AS probe_until, h.last_error"
)


def _health(row: asyncpg.Record) -> Health:
    if row["state"] is None:
        return Health()
    return Health(
        row["state"],
        row["failures"],
        row["opened_at"],
        row["cooldown"],
        row["probe_until"],
        row["last_error"],
    )


async def health(pool: Pool, partner: str) -> tuple[Health, float]:
    """The partner's circuit, and the database's clock now."""
    async with connection_of(pool) as connection:
        row = await connection.fetchrow(
            f"SELECT {_COLUMNS} FROM (SELECT 1) AS one"
            " LEFT JOIN partner_health AS h ON h.partner = $1",
            partner,
        )
    assert row is not None
    return _health(row), float(row["now"])


async def change_health(
    pool: Pool, partner: str, how: Callable[[Health, float], Health]
) -> tuple[Health, Health, float]:
    """Apply `how(health, now)` to the partner's circuit under its row lock:
    (before, after, now). `since` moves when the state does."""
    async with connection_of(pool) as connection, connection.transaction():
        await connection.execute(
            "INSERT INTO partner_health (partner, state) VALUES ($1, 'closed')"
            " ON CONFLICT (partner) DO NOTHING",
            partner,
        )
        row = await connection.fetchrow(
            f"SELECT {_COLUMNS} FROM partner_health AS h WHERE h.partner = $1 FOR UPDATE", partner
        )
        assert row is not None
        before, now = _health(row), float(row["now"])
        after = how(before, now)
        if after != before:
            await connection.execute(
                "UPDATE partner_health SET state = $2,"
                " since = CASE WHEN state = $2 THEN since ELSE now() END, failures = $3,"
                " opened_at = CASE WHEN $4 > 0 THEN to_timestamp($4) END,"
                " cooldown_s = $5, probe_until = CASE WHEN $6 > 0 THEN to_timestamp($6) END,"
                " last_error = $7 WHERE partner = $1",
                partner,
                after.state,
                after.failures,
                after.opened_at,
                after.cooldown,
                after.probe_until,
                after.last_error,
            )
    return before, after, now
