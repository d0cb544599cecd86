"""Queries of mappings: partners' staff and lead-source lists, cached; and mapping gaps.

A cached list is `{normalised key: partner id}` per partner, club and kind,
with the time it was fetched. `refreshing()` lets one worker at a time
refresh one list, or create in it: a claim of the list (`list_claims`, a
lease renewed while it is held), taken and released by short statements, so
that nothing is held in PostgreSQL while the partner is called.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog

from hub.errors import TransientError
from hub.pacing import backoff
from hub.store.pool import Pool, connection_of, database_errors

log = structlog.get_logger(__name__)

# A list's claim lasts this long unless renewed (every third of it, while held).
LEASE = 30.0
# How long a worker waits for a list another worker refreshes: past a lease, so that
# the claim of a worker that died runs out meanwhile.
WAIT = LEASE + 15.0


class ListBusy(TransientError):
    """Another worker has refreshed (or created in) this list for longer than `WAIT`."""


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
    """Hold the list's claim for the block: waits (with backoff, up to `WAIT`) while
    another worker holds it, then ListBusy."""
    where = (partner, client_id, club_id, kind)
    token = uuid.uuid4().hex
    give_up, tries = time.monotonic() + WAIT, 0
    while not await _claim(pool, where, token):
        if time.monotonic() > give_up:
            raise ListBusy(f"the {kind} list of {partner} club {club_id} is held by another worker")
        tries += 1
        await asyncio.sleep(backoff(tries, 0.05, 1.0))
    renewing = asyncio.create_task(_renew(pool, where, token))
    try:
        yield
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        try:
            async with connection_of(pool) as connection:
                await connection.execute(
                    "DELETE FROM list_claims WHERE partner = $1 AND client_id = $2"
                    " AND club_id = $3 AND kind = $4 AND claimed_by = $5",
                    *where,
                    token,
                )
        except TransientError as exc:  # its lease runs out instead
            log.warning("list claim not released", partner=partner, error=str(exc))


async def _claim(pool: Pool, where: tuple[str, str, str, str], token: str) -> bool:
    async with connection_of(pool) as connection:
        return bool(
            await connection.fetchval(
                "INSERT INTO list_claims AS c (partner, client_id, club_id, kind, claimed_by,"
                " claimed_until) VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))"
                " ON CONFLICT (partner, client_id, club_id, kind) DO UPDATE SET"
                " claimed_by = EXCLUDED.claimed_by, claimed_until = EXCLUDED.claimed_until"
                " WHERE c.claimed_by = EXCLUDED.claimed_by OR c.claimed_until < now()"
                " RETURNING true",
                *where,
                token,
                LEASE,
            )
        )


async def _renew(pool: Pool, where: tuple[str, str, str, str], token: str) -> None:
    while True:
        await asyncio.sleep(LEASE / 3)
        try:
            if not await _claim(pool, where, token):
                log.warning("list claim lost", partner=where[0], kind=where[3])
        except TransientError as exc:
            log.warning("list claim not renewed", partner=where[0], error=str(exc))


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
