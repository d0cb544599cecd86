"""Queries of delivery: where each record stands at each partner, and every attempt.

A batch of deliveries to one partner runs in one transaction
(`delivering_many()`): it takes a transaction advisory lock on each record
and partner, reads the latest records with where the partner stands, and at
the end writes the attempts and, for those delivered, the partner's IDs and
versions, all committed at once. The lock is released by
that commit (or by the connection dying with its worker), so a second
worker reads only what the first committed: this is what makes "never two
creates of one person at one partner" hold under redelivery and concurrent
updates. One commit per batch, not one per statement.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from hub.records import StoredRecord
from hub.store.pool import Connection, Pool, database_errors
from hub.store.records import COLUMNS, row_to_record


@dataclass(frozen=True, slots=True)
class Standing:
    partner_id: str | None
    delivered_version: int


@dataclass(frozen=True, slots=True)
class Attempt:
    partner: str
    uuid: uuid.UUID
    version: int
    attempt: int
    outcome: str  # delivered, transient, permanent
    status: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    answer: str | None = None
    notes: Sequence[str] = ()


class Deliveries:
    """Several records' deliveries to one partner, inside one transaction."""

    def __init__(self, connection: Connection, partner: str) -> None:
        self._connection = connection
        self._partner = partner

    async def load(
        self, uuids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[StoredRecord, Standing]]:
        columns = ", ".join(f"r.{c}" for c in COLUMNS.split(", "))
        rows = await self._connection.fetch(
            f"SELECT {columns}, d.partner_id, d.delivered_version"
            " FROM records AS r LEFT JOIN deliveries AS d ON d.uuid = r.uuid AND d.partner = $2"
            " WHERE r.uuid = ANY($1::uuid[])",
            list(uuids),
            self._partner,
        )
        return {
            row["uuid"]: (
                row_to_record(row),
                Standing(row["partner_id"], row["delivered_version"] or 0),
            )
            for row in rows
        }

    async def finish(self, done: Sequence[tuple[Attempt, str | None]]) -> None:
        """Log every attempt; remember the partner ID and version of each delivered one."""
        if not done:
            return
        await self._connection.execute(
            "WITH attempt AS (INSERT INTO delivery_attempts (partner, uuid, version, attempt,"
            " outcome, status, latency_ms, error, answer, notes)"
            " SELECT $1, u, v, a, o, s, l, e, w,"
            " CASE WHEN n = '' THEN '{}'::text[] ELSE string_to_array(n, E'\\x1f') END"
            " FROM unnest($2::uuid[], $3::int[], $4::int[], $5::text[], $6::int[],"
            " $7::float8[], $8::text[], $9::text[], $10::text[]) AS t(u, v, a, o, s, l, e, w, n))"
            " INSERT INTO deliveries (partner, uuid, partner_id, delivered_version, delivered_at)"
            " SELECT $1, u, p, v, now() FROM unnest($2::uuid[], $11::text[], $3::int[])"
            " AS t(u, p, v) WHERE p IS NOT NULL"
            " ON CONFLICT (partner, uuid) DO UPDATE SET partner_id = EXCLUDED.partner_id,"
            " delivered_at = now(), delivered_version ="
            " GREATEST(deliveries.delivered_version, EXCLUDED.delivered_version)",
            self._partner,
            [a.uuid for a, _ in done],
            [a.version for a, _ in done],
            [a.attempt for a, _ in done],
            [a.outcome for a, _ in done],
            [a.status for a, _ in done],
            [a.latency_ms for a, _ in done],
            [a.error for a, _ in done],
            [a.answer for a, _ in done],
            ["\x1f".join(a.notes) for a, _ in done],
            [partner_id for _, partner_id in done],
        )


@asynccontextmanager
async def delivering_many(
    pool: Pool, partner: str, uuids: Sequence[uuid.UUID]
) -> AsyncIterator[Deliveries]:
    """One transaction holding the locks of all these records at this partner."""
    async with database_errors(), pool.acquire() as connection, connection.transaction():
        # In one order (by lock key), so that two batches cannot deadlock.
        await connection.execute(
            "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtext($1 || u::text) AS k"
            " FROM unnest($2::uuid[]) AS u ORDER BY k) AS l",
            f"deliver:{partner}:",
            list(uuids),
        )
        yield Deliveries(connection, partner)


async def routed(pool: Pool, jobs: Sequence[tuple[str, uuid.UUID, int]]) -> None:
    """Mark these (partner, record, version) as sent to the partner: waiting until delivered."""
    if not jobs:
        return
    async with database_errors():
        await pool.execute(
            "INSERT INTO deliveries (partner, uuid, routed_version, routed_at)"
            " SELECT p, u, v, now() FROM unnest($1::text[], $2::uuid[], $3::int[]) AS t(p, u, v)"
            " ORDER BY p, u"
            " ON CONFLICT (partner, uuid) DO UPDATE SET"
            " routed_version = GREATEST(deliveries.routed_version, EXCLUDED.routed_version),"
            " routed_at = CASE WHEN deliveries.routed_version < EXCLUDED.routed_version"
            " AND deliveries.delivered_version >= deliveries.routed_version"
            " THEN EXCLUDED.routed_at ELSE coalesce(deliveries.routed_at, EXCLUDED.routed_at) END",
            [partner for partner, _, _ in jobs],
            [record for _, record, _ in jobs],
            [version for _, _, version in jobs],
        )
