"""Queries of delivery: where each record stands at each partner, and every attempt.

A batch of deliveries to one partner goes in three short steps, and no
transaction or connection is held while the partner is called:

1. `claim()`: one statement marks each record at the partner as claimed by
   this worker (`claimed_by`, a token of the worker) until `claimed_until`
   (a lease). A record claimed by another worker whose lease runs is not
   claimed; one whose worker died is free again once its lease has run out.
2. `load()`: the latest records, with the partner's ID and the version it
   has (read after the claim, so after the previous claimant's `finish()`).
3. `finish()`: one transaction writes the attempts and, for those delivered,
   the partner's IDs and versions, and releases the claims.

A claim is what makes "never two creates of one person at one partner" hold
under redelivery and concurrent updates: two workers never call the partner
for one record at once, and the second reads what the first wrote.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from hub.records import StoredRecord
from hub.store.pool import Connection, Pool, connection_of, database_errors
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


async def claim(
    pool: Pool, partner: str, uuids: Collection[uuid.UUID], token: str, lease: float
) -> set[uuid.UUID]:
    """Claim these records at this partner for `lease` seconds; the ones claimed (records
    that exist, not claimed by another worker whose lease runs)."""
    async with connection_of(pool) as connection:
        rows = await connection.fetch(
            "INSERT INTO deliveries AS d (partner, uuid, claimed_by, claimed_until)"
            " SELECT $1, u, $3, now() + make_interval(secs => $4)"
            " FROM unnest($2::uuid[]) AS u WHERE EXISTS (SELECT 1 FROM records WHERE uuid = u)"
            " ORDER BY u"  # one order of row locks, so that two claims cannot deadlock
            " ON CONFLICT (partner, uuid) DO UPDATE SET claimed_by = EXCLUDED.claimed_by,"
            " claimed_until = EXCLUDED.claimed_until"
            " WHERE d.claimed_by IS NULL OR d.claimed_by = EXCLUDED.claimed_by"
            " OR d.claimed_until < now()"
            " RETURNING uuid",
            partner,
            sorted(set(uuids)),
            token,
            lease,
        )
    return {row["uuid"] for row in rows}


async def renew(
    pool: Pool, partner: str, uuids: Collection[uuid.UUID], token: str, lease: float
) -> int:
    """Extend this worker's claims on these records by `lease` seconds from now; how many
    it still held (a released claim is not taken again)."""
    async with connection_of(pool) as connection:
        rows = await connection.fetch(
            "UPDATE deliveries SET claimed_until = now() + make_interval(secs => $4)"
            " WHERE partner = $1 AND uuid = ANY($2::uuid[]) AND claimed_by = $3 RETURNING uuid",
            partner,
            sorted(set(uuids)),
            token,
            lease,
        )
    return len(rows)


async def load(
    pool: Pool, partner: str, uuids: Collection[uuid.UUID]
) -> dict[uuid.UUID, tuple[StoredRecord, Standing]]:
    """The latest version of each record, and where the partner stands with it."""
    columns = ", ".join(f"r.{c}" for c in COLUMNS.split(", "))
    async with connection_of(pool) as connection:
        rows = await connection.fetch(
            f"SELECT {columns}, d.partner_id, d.delivered_version"
            " FROM records AS r LEFT JOIN deliveries AS d ON d.uuid = r.uuid AND d.partner = $2"
            " WHERE r.uuid = ANY($1::uuid[])",
            list(uuids),
            partner,
        )
    return {
        row["uuid"]: (
            row_to_record(row),
            Standing(row["partner_id"], row["delivered_version"] or 0),
        )
        for row in rows
    }


async def finish(
    pool: Pool,
    partner: str,
    token: str,
    done: Sequence[tuple[Attempt, str | None]],
    claimed: Collection[uuid.UUID],
) -> None:
    """Log every attempt; remember the partner ID and version of each delivered one;
    release this worker's claims on `claimed`. One short transaction."""
    async with connection_of(pool) as connection, connection.transaction():
        if done:
            await _write(connection, partner, done)
        if claimed:
            await connection.execute(
                "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL"
                " WHERE partner = $1 AND uuid = ANY($2::uuid[]) AND claimed_by = $3",
                partner,
                sorted(set(claimed)),
                token,
            )


async def release(pool: Pool, partner: str, token: str, claimed: Collection[uuid.UUID]) -> None:
    """Release this worker's claims, nothing written (a batch given up)."""
    await finish(pool, partner, token, (), claimed)


async def _write(
    connection: Connection, partner: str, done: Sequence[tuple[Attempt, str | None]]
) -> None:
    await connection.execute(
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
        partner,
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
