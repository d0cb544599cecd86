"""Queries of mappings: partners' staff and lead-source lists, cached; and mapping gaps.

A cached list is `{normalised key: partner id}` per partner, club and kind,
with the time it was fetched. `refreshing()` lets one worker at a time
refresh one list (a transaction advisory lock).
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from hub.store.pool import Pool, database_errors


@dataclass(frozen=True, slots=True)
class Cached:
    entries: dict[str, str]
    refreshed_at: datetime.datetime


async def cached(
    pool: Pool, partner: str, client_id: str, club_id: str, kind: str
) -> Cached | None:
    async with database_errors():
        row = await pool.fetchrow(
            "SELECT entries, refreshed_at FROM partner_lists"
            " WHERE partner = $1 AND client_id = $2 AND club_id = $3 AND kind = $4",
            partner,
            client_id,
            club_id,
            kind,
        )
    return None if row is None else Cached(dict(row[0]), row[1])


async def store(
    pool: Pool,
    partner: str,
    client_id: str,
    club_id: str,
    kind: str,
    entries: Mapping[str, str],
    *,
    merge: bool,
) -> None:
    """Replace the list (a fresh fetch), or merge entries into it (a find or a create)."""
    update = "partner_lists.entries || EXCLUDED.entries" if merge else "EXCLUDED.entries"
    refreshed = "partner_lists.refreshed_at" if merge else "EXCLUDED.refreshed_at"
    async with database_errors():
        await pool.execute(
            "INSERT INTO partner_lists (partner, client_id, club_id, kind, entries, refreshed_at)"
            " VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (partner, client_id, club_id, kind)"
            f" DO UPDATE SET entries = {update}, refreshed_at = {refreshed}",
            partner,
            client_id,
            club_id,
            kind,
            dict(entries),
        )


@asynccontextmanager
async def refreshing(
    pool: Pool, partner: str, client_id: str, club_id: str, kind: str
) -> AsyncIterator[None]:
    key = f"list:{partner}:{client_id}:{club_id}:{kind}"
    # A transaction lock: released by the commit, or by the connection if the task dies.
    async with database_errors(), pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", key)
        yield


async def gap(pool: Pool, partner: str, client_id: str, club_id: str, kind: str, key: str) -> None:
    async with database_errors():
        await pool.execute(
            "INSERT INTO mapping_gaps (partner, client_id, club_id, kind, key) VALUES"
            " ($1, $2, $3, $4, $5) ON CONFLICT (partner, client_id, club_id, kind, key)"
            " DO UPDATE SET last_seen = now(), count = mapping_gaps.count + 1",
            partner,
            client_id,
            club_id,
            kind,
            key,
        )


async def forget(pool: Pool, partners: list[str]) -> None:
    """Drop the cached lists of these partners (they are fetched again on the next miss)."""
    async with database_errors():
        await pool.execute("DELETE FROM partner_lists WHERE partner = ANY($1::text[])", partners)
