"""Queries on records: the router's upsert and the ingress's reads.

The upsert is the one place where a record's version moves: +1 only when the
content changed, never for a redelivered message (known message id) and
never for a message older than the newest applied (`received_at`), so that
versions only rise and an old save never overwrites a newer one.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import asyncpg

from hub.connector.documents import Kind
from hub.message import Inbound
from hub.records import StoredRecord
from hub.store.pool import Connection, Pool, database_errors

Outcome = Literal["created", "changed", "unchanged", "stale", "redelivered"]


@dataclass(frozen=True, slots=True)
class Applied:
    """What storing one inbox message did."""

    outcome: Outcome
    version: int
    # The record the save was applied to: its own, or the one it is linked to.
    uuid: uuid.UUID

    @property
    def changed(self) -> bool:
        return self.outcome in ("created", "changed")


def content_hash(inbound: Inbound) -> bytes:
    canonical = json.dumps(inbound.body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).digest()


async def apply(
    pool: Pool, saves: Sequence[Inbound], receivers: frozenset[str] | None = None
) -> list[Applied]:
    """Store a batch of saves in one transaction; idempotent under redelivery.

    `receivers` are the providers the hub delivers to (None: any may be): only
    their saves can be of records the hub created there (two-way sync).
    """
    async with database_errors(), pool.acquire() as connection, connection.transaction():
        # Serialise saves of one record across routers, so that the version check holds;
        # every batch takes its locks in one order, so that two batches cannot deadlock.
        await connection.execute(
            "SELECT pg_advisory_xact_lock(k) FROM"
            " (SELECT DISTINCT hashtext(u) AS k FROM unnest($1::text[]) AS u ORDER BY k) AS l",
            [str(save.uuid) for save in saves],
        )
        return [await _apply_one(connection, save, receivers) for save in saves]


async def _apply_one(
    connection: Connection, inbound: Inbound, receivers: frozenset[str] | None
) -> Applied:
    known = await connection.fetchrow(
        "SELECT version, uuid FROM receipts WHERE message_id = $1", inbound.message_id
    )
    if known is not None:
        return Applied("redelivered", known["version"], known["uuid"])
    linkable = receivers is None or inbound.provider in receivers
    linked = await _linked(connection, inbound) if linkable else None
    if linked is None:
        return await _store(connection, inbound)
    applied = await _update_linked(connection, inbound, linked)
    if applied.changed:
        # The sender has this version already: never deliver it back (no echo).
        await connection.execute(
            _SENDER_HAS_IT, inbound.provider, applied.uuid, inbound.record_id, applied.version
        )
    await connection.execute(
        "INSERT INTO receipts (message_id, uuid, received_at, version, outcome)"
        " VALUES ($1, $2, $3, $4, $5)",
        inbound.message_id,
        applied.uuid,
        inbound.received_at,
        applied.version,
        applied.outcome,
    )
    return applied


# The common path in one statement: the upsert (version +1 only when the content
# changed, nothing when an older save arrives late), "the sender has this version"
# (so that it is never echoed back), and the receipt.
_STORE = """
WITH old AS (SELECT version FROM records WHERE uuid = $1),
up AS (
    INSERT INTO records AS r (uuid, kind, provider, client, club, client_id, club_id,
                              record_id, body, content_sha256, received_at, created_by,
                              modified_by)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $3, $3)
    ON CONFLICT (uuid) DO UPDATE SET
        body = EXCLUDED.body,
        content_sha256 = EXCLUDED.content_sha256,
        version = r.version + (r.content_sha256 <> EXCLUDED.content_sha256)::int,
        received_at = EXCLUDED.received_at,
        client = EXCLUDED.client,
        club = EXCLUDED.club,
        modified_at = CASE WHEN r.content_sha256 <> EXCLUDED.content_sha256
                           THEN now() ELSE r.modified_at END,
        modified_by = CASE WHEN r.content_sha256 <> EXCLUDED.content_sha256
                           THEN EXCLUDED.modified_by ELSE r.modified_by END
    WHERE r.received_at < EXCLUDED.received_at
    RETURNING version, (xmax = 0) AS created
),
outcome AS (
    SELECT up.version,
           CASE WHEN up.created OR (SELECT version FROM old) IS NULL THEN 'created'
                WHEN up.version > (SELECT version FROM old) THEN 'changed'
                ELSE 'unchanged' END AS outcome
      FROM up
    UNION ALL
    SELECT (SELECT version FROM old), 'stale' WHERE NOT EXISTS (SELECT 1 FROM up)
),
sender_has_it AS (
    INSERT INTO deliveries (partner, uuid, partner_id, delivered_version, delivered_at)
    SELECT $3, $1, $8, version, now() FROM outcome WHERE outcome IN ('created', 'changed')
    ON CONFLICT (partner, uuid) DO UPDATE SET
        delivered_version = GREATEST(deliveries.delivered_version, EXCLUDED.delivered_version)
),
receipt AS (
    INSERT INTO receipts (message_id, uuid, received_at, version, outcome)
    SELECT $12, $1, $11, version, outcome FROM outcome
)
SELECT version, outcome FROM outcome
"""


async def _store(connection: Connection, inbound: Inbound) -> Applied:
    row = await connection.fetchrow(
        _STORE,
        inbound.uuid,
        inbound.kind.value,
        inbound.provider,
        inbound.client,
        inbound.club,
        inbound.client_id,
        inbound.club_id,
        inbound.record_id,
        inbound.body,
        content_hash(inbound),
        inbound.received_at,
        inbound.message_id,
    )
    assert row is not None  # outcome always has one row
    return Applied(row["outcome"], row["version"], inbound.uuid)


_SENDER_HAS_IT = """
INSERT INTO deliveries (partner, uuid, partner_id, delivered_version, delivered_at)
VALUES ($1, $2, $3, $4, now())
ON CONFLICT (partner, uuid) DO UPDATE SET
    delivered_version = GREATEST(deliveries.delivered_version, EXCLUDED.delivered_version)
"""


async def _linked(connection: Connection, inbound: Inbound) -> uuid.UUID | None:
    """The hub's record that the sender knows by this recordID, because the hub created it there."""
    if inbound.kind is not Kind.USER:
        return None
    found: uuid.UUID | None = await connection.fetchval(
        "SELECT d.uuid FROM deliveries AS d JOIN records AS r USING (uuid)"
        " WHERE d.partner = $1 AND d.partner_id = $2 AND d.uuid <> $3"
        " AND r.client = $4 AND r.club = $5 AND r.kind = 'user' LIMIT 1",
        inbound.provider,
        inbound.record_id,
        inbound.uuid,
        inbound.client,
        inbound.club,
    )
    return found


async def _update_linked(connection: Connection, inbound: Inbound, linked: uuid.UUID) -> Applied:
    """A partner's save of a record the hub created there: an update of that one record."""
    digest = content_hash(inbound)
    before = await connection.fetchrow(
        "SELECT version, content_sha256 FROM records WHERE uuid = $1", linked
    )
    row = await connection.fetchrow(
        "UPDATE records SET body = $2, content_sha256 = $3, received_at = $4,"
        " version = version + (content_sha256 <> $3)::int,"
        " modified_at = CASE WHEN content_sha256 <> $3 THEN now() ELSE modified_at END,"
        " modified_by = CASE WHEN content_sha256 <> $3 THEN $5 ELSE modified_by END"
        " WHERE uuid = $1 AND received_at < $4 RETURNING version",
        linked,
        inbound.body,
        digest,
        inbound.received_at,
        inbound.provider,
    )
    assert before is not None  # deliveries reference records
    if row is None:
        return Applied("stale", before["version"], linked)
    outcome: Outcome = "changed" if before["content_sha256"] != digest else "unchanged"
    return Applied(outcome, row["version"], linked)


COLUMNS = (
    "uuid, kind, provider, client, club, client_id, club_id, record_id, body, version,"
    " created_by, created_at, modified_by, modified_at"
)


async def find(
    pool: Pool,
    provider: str,
    kind: Kind,
    record_id: str,
    client_id: str | None = None,
    club_id: str | None = None,
) -> list[StoredRecord]:
    """The provider's records with this recordID, narrowed by client and club if given."""
    async with database_errors():
        rows = await pool.fetch(
            f"SELECT {COLUMNS} FROM records WHERE provider = $1 AND kind = $2"
            " AND record_id = $3 AND ($4::text IS NULL OR client_id = $4)"
            " AND ($5::text IS NULL OR club_id = $5) ORDER BY client_id, club_id",
            provider,
            kind.value,
            record_id,
            client_id,
            club_id,
        )
    return [row_to_record(r) for r in rows]


async def in_club(
    pool: Pool, provider: str, kind: Kind, client_id: str, club_id: str
) -> list[StoredRecord]:
    """Every record of this kind that the provider saved for one club."""
    async with database_errors():
        rows = await pool.fetch(
            f"SELECT {COLUMNS} FROM records WHERE provider = $1 AND kind = $2"
            " AND client_id = $3 AND club_id = $4 ORDER BY record_id",
            provider,
            kind.value,
            client_id,
            club_id,
        )
    return [row_to_record(r) for r in rows]


async def get(pool: Pool, record_uuid: uuid.UUID) -> StoredRecord | None:
    async with database_errors():
        row = await pool.fetchrow(f"SELECT {COLUMNS} FROM records WHERE uuid = $1", record_uuid)
    return None if row is None else row_to_record(row)


def row_to_record(row: asyncpg.Record) -> StoredRecord:
    return StoredRecord(
        uuid=row["uuid"],
        kind=Kind(row["kind"]),
        provider=row["provider"],
        client=row["client"],
        club=row["club"],
        client_id=row["client_id"],
        club_id=row["club_id"],
        record_id=row["record_id"],
        body=row["body"],
        version=row["version"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        modified_by=row["modified_by"],
        modified_at=row["modified_at"],
    )
