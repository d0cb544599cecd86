"""Queries of delivery: where each record stands at each partner, and every attempt.

`exclusive()` serialises the deliveries of one record to one partner across
all workers (a session advisory lock, released with the connection if a
worker dies), which is what makes "never two creates of one person at one
partner" hold under redelivery and concurrent updates.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from hub.store.pool import Connection, Pool, database_errors


@dataclass(frozen=True, slots=True)
class Standing:
    partner_id: str | None
    delivered_version: int


@asynccontextmanager
async def exclusive(pool: Pool, partner: str, record: uuid.UUID) -> AsyncIterator[Connection]:
    key = f"deliver:{partner}:{record}"
    async with database_errors(), pool.acquire() as connection:
        await connection.execute("SELECT pg_advisory_lock(hashtext($1))", key)
        try:
            yield connection
        finally:
            await connection.execute("SELECT pg_advisory_unlock(hashtext($1))", key)


async def standing(connection: Connection, partner: str, record: uuid.UUID) -> Standing:
    row = await connection.fetchrow(
        "SELECT partner_id, delivered_version FROM deliveries WHERE partner = $1 AND uuid = $2",
        partner,
        record,
    )
    return Standing(None, 0) if row is None else Standing(row[0], row[1])


async def delivered(
    connection: Connection, partner: str, record: uuid.UUID, partner_id: str, version: int
) -> None:
    await connection.execute(
        "INSERT INTO deliveries (partner, uuid, partner_id, delivered_version, delivered_at)"
        " VALUES ($1, $2, $3, $4, now()) ON CONFLICT (partner, uuid) DO UPDATE SET"
        " partner_id = EXCLUDED.partner_id, delivered_at = now(),"
        " delivered_version = GREATEST(deliveries.delivered_version, EXCLUDED.delivered_version)",
        partner,
        record,
        partner_id,
        version,
    )


@dataclass(frozen=True, slots=True)
class Attempt:
    partner: str
    uuid: uuid.UUID
    version: int
    attempt: int
    outcome: str  # delivered, skipped, transient, permanent
    status: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    answer: str | None = None
    notes: Sequence[str] = ()


async def log_attempt(pool: Pool, attempt: Attempt) -> None:
    async with database_errors():
        await pool.execute(
            "INSERT INTO delivery_attempts (partner, uuid, version, attempt, outcome, status,"
            " latency_ms, error, answer, notes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
        )
