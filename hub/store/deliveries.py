"""Queries of delivery: where each record stands at each partner, and every attempt.

A delivery runs in one transaction (`delivering()`): it takes a transaction
advisory lock on the record and partner, reads the latest record with where
the partner stands, and at the end writes the attempt and, if delivered, the
partner's ID and version, all committed at once. The lock is released by
that commit (or by the connection dying with its worker), so a second
worker reads only what the first committed: this is what makes "never two
creates of one person at one partner" hold under redelivery and concurrent
updates. One commit per delivery, not one per statement.
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


class Delivery:
    """One record's delivery to one partner, inside its transaction."""

    def __init__(self, connection: Connection, partner: str, record_uuid: uuid.UUID) -> None:
        self._connection = connection
        self._partner = partner
        self._uuid = record_uuid

    async def load(self) -> tuple[StoredRecord | None, Standing]:
        columns = ", ".join(f"r.{c}" for c in COLUMNS.split(", "))
        row = await self._connection.fetchrow(
            f"SELECT {columns}, d.partner_id, d.delivered_version"
            " FROM records AS r LEFT JOIN deliveries AS d ON d.uuid = r.uuid AND d.partner = $2"
            " WHERE r.uuid = $1",
            self._uuid,
            self._partner,
        )
        if row is None:
            return None, Standing(None, 0)
        return row_to_record(row), Standing(row["partner_id"], row["delivered_version"] or 0)

    async def finish(self, attempt: Attempt, partner_id: str | None) -> None:
        """Log the attempt; with a partner ID, remember it and the version delivered."""
        await self._connection.execute(
            "WITH attempt AS (INSERT INTO delivery_attempts (partner, uuid, version, attempt,"
            " outcome, status, latency_ms, error, answer, notes)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10))"
            " INSERT INTO deliveries (partner, uuid, partner_id, delivered_version, delivered_at)"
            " SELECT $1, $2, $11, $3, now() WHERE $11::text IS NOT NULL"
            " ON CONFLICT (partner, uuid) DO UPDATE SET partner_id = EXCLUDED.partner_id,"
            " delivered_at = now(), delivered_version ="
            " GREATEST(deliveries.delivered_version, EXCLUDED.delivered_version)",
            attempt.partner,
            attempt.uuid,
            attempt.version,
            attempt.attempt,
            attempt.outcome,
            attempt.status,
            attempt.latency_ms,
            attempt.error,
            attempt.answer,
            list(attempt.notes),
            partner_id,
        )


@asynccontextmanager
async def delivering(pool: Pool, partner: str, record_uuid: uuid.UUID) -> AsyncIterator[Delivery]:
    async with database_errors(), pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))", f"deliver:{partner}:{record_uuid}"
        )
        yield Delivery(connection, partner, record_uuid)
