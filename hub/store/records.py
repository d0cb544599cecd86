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


def canonical_json(inbound: Inbound) -> str:
    """The body as stored and hashed: sorted keys, no spaces."""
    return json.dumps(inbound.body, sort_keys=True, separators=(",", ":"))


def content_hash(inbound: Inbound, canonical: str | None = None) -> bytes:
    return hashlib.sha256((canonical or canonical_json(inbound)).encode()).digest()


async def apply(
    pool: Pool, saves: Sequence[Inbound], receivers: frozenset[str] | None = None
) -> list[Applied]:
    """Store a batch of saves in one transaction; idempotent under redelivery.

    `receivers` are the providers the hub delivers to (None: any may be): only
    their saves can be of records the hub created there (two-way sync).

    A handful of statements per batch, not per save: the receipts and the links
    are read for the whole batch, and consecutive saves of distinct records are
    stored by one statement; saves of one record are applied in their order.
    """
    async with database_errors(), pool.acquire() as connection, connection.transaction():
        # Serialise saves of one record across routers, so that the version check holds;
        # every batch takes its locks in one order, so that two batches cannot deadlock.
        await connection.execute(
            "SELECT pg_advisory_xact_lock(k) FROM"
            " (SELECT DISTINCT hashtext(u) AS k FROM unnest($1::text[]) AS u ORDER BY k) AS l",
            [str(save.uuid) for save in saves],
        )
        known = await _receipts(connection, saves)
        fresh = [save for save in saves if save.message_id not in known]
        linkable = [
            save
            for save in fresh
            if save.kind is Kind.USER and (receivers is None or save.provider in receivers)
        ]
        links = await _links(connection, linkable) if linkable else {}
        applied: dict[uuid.UUID, Applied] = dict(known)
        group: dict[uuid.UUID, Inbound] = {}  # by record: one save of each per statement
        for save in fresh:
            linked = links.get(save.message_id)
            if linked is None and save.uuid not in group:
                group[save.uuid] = save
                continue
            applied |= await _store(connection, list(group.values()))
            group = {}
            if linked is None:
                group[save.uuid] = save
            else:
                applied[save.message_id] = await _apply_linked(connection, save, linked)
        applied |= await _store(connection, list(group.values()))
        return [applied[save.message_id] for save in saves]


async def _receipts(connection: Connection, saves: Sequence[Inbound]) -> dict[uuid.UUID, Applied]:
    """The saves of this batch that were applied before (a redelivered message)."""
    rows = await connection.fetch(
        "SELECT message_id, version, uuid FROM receipts WHERE message_id = ANY($1::uuid[])",
        [save.message_id for save in saves],
    )
    return {r["message_id"]: Applied("redelivered", r["version"], r["uuid"]) for r in rows}


async def _links(connection: Connection, saves: Sequence[Inbound]) -> dict[uuid.UUID, uuid.UUID]:
    """By message id: the hub's record that the sender knows by the save's recordID,
    because the hub created it there (two-way sync)."""
    rows = await connection.fetch(
        "SELECT i.message_id, l.uuid"
        " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[])"
        "      AS i(message_id, provider, record_id, uuid, client, club)"
        " CROSS JOIN LATERAL ("
        "   SELECT d.uuid FROM deliveries AS d JOIN records AS r USING (uuid)"
        "    WHERE d.partner = i.provider AND d.partner_id = i.record_id AND d.uuid <> i.uuid"
        "      AND r.client = i.client AND r.club = i.club AND r.kind = 'user' LIMIT 1) AS l",
        [s.message_id for s in saves],
        [s.provider for s in saves],
        [s.record_id for s in saves],
        [s.uuid for s in saves],
        [s.client for s in saves],
        [s.club for s in saves],
    )
    return {r["message_id"]: r["uuid"] for r in rows}


async def _apply_linked(connection: Connection, inbound: Inbound, linked: uuid.UUID) -> Applied:
    applied = await _update_linked(connection, inbound, linked)
    if applied.changed:
        # The sender has this version already: never deliver it back (no echo).
        await connection.execute(
            _SENDER_HAS_IT, inbound.provider, applied.uuid, inbound.record_id, applied.version
        )
    await connection.execute(
        "INSERT INTO receipts (message_id, uuid, received_at, version, outcome, sender)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        inbound.message_id,
        applied.uuid,
        inbound.received_at,
        applied.version,
        applied.outcome,
        inbound.provider,
    )
    return applied


# Saves of distinct records in one statement: the upsert (version +1 only when the
# content changed, nothing when an older save arrives late), "the sender has this
# version" (so that it is never echoed back), and the receipt. Every CTE sees the
# table as it was before the statement: `old` is each record's version before.
_STORE = """
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[], $8::text[], $9::text[], $10::bytea[],
                         $11::timestamptz[], $12::uuid[])
        AS i(uuid, kind, provider, client, club, client_id, club_id, record_id, body,
             content_sha256, received_at, message_id)
),
old AS (SELECT r.uuid, r.version FROM records AS r JOIN input USING (uuid)),
up AS (
    INSERT INTO records AS r (uuid, kind, provider, client, club, client_id, club_id,
                              record_id, body, content_sha256, received_at, created_by,
                              modified_by)
    SELECT uuid, kind, provider, client, club, client_id, club_id, record_id, body::jsonb,
           content_sha256, received_at, provider, provider
      FROM input
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
    RETURNING r.uuid, r.version, (xmax = 0) AS created
),
outcome AS (
    SELECT i.uuid, i.provider, i.record_id, i.received_at, i.message_id,
           coalesce(up.version, old.version) AS version,
           CASE WHEN up.uuid IS NULL THEN 'stale'
                WHEN up.created OR old.version IS NULL THEN 'created'
                WHEN up.version > old.version THEN 'changed'
                ELSE 'unchanged' END AS outcome
      FROM input AS i LEFT JOIN up USING (uuid) LEFT JOIN old USING (uuid)
),
sender_has_it AS (
    INSERT INTO deliveries (partner, uuid, partner_id, delivered_version, delivered_at)
    SELECT provider, uuid, record_id, version, now() FROM outcome
     WHERE outcome IN ('created', 'changed')
    ON CONFLICT (partner, uuid) DO UPDATE SET
        delivered_version = GREATEST(deliveries.delivered_version, EXCLUDED.delivered_version)
),
receipt AS (
    INSERT INTO receipts (message_id, uuid, received_at, version, outcome, sender)
    SELECT message_id, uuid, received_at, version, outcome, provider FROM outcome
)
SELECT message_id, uuid, version, outcome FROM outcome
"""


async def _store(connection: Connection, saves: Sequence[Inbound]) -> dict[uuid.UUID, Applied]:
    """Store saves of distinct records, in one statement; by message id, what each did."""
    if not saves:
        return {}
    bodies = [canonical_json(save) for save in saves]
    rows = await connection.fetch(
        _STORE,
        [s.uuid for s in saves],
        [s.kind.value for s in saves],
        [s.provider for s in saves],
        [s.client for s in saves],
        [s.club for s in saves],
        [s.client_id for s in saves],
        [s.club_id for s in saves],
        [s.record_id for s in saves],
        bodies,
        [content_hash(s, body) for s, body in zip(saves, bodies, strict=True)],
        [s.received_at for s in saves],
        [s.message_id for s in saves],
    )
    assert len(rows) == len(saves)  # outcome has one row per input row
    return {r["message_id"]: Applied(r["outcome"], r["version"], r["uuid"]) for r in rows}


_SENDER_HAS_IT = """
INSERT INTO deliveries (partner, uuid, partner_id, delivered_version, delivered_at)
VALUES ($1, $2, $3, $4, now())
ON CONFLICT (partner, uuid) DO UPDATE SET
    delivered_version = GREATEST(deliveries.delivered_version, EXCLUDED.delivered_version)
"""


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


async def owner_email(pool: Pool, record: StoredRecord) -> str | None:
    """The email of a user record's owner: the sender's own staff record that its
    leadInfo.ownerID names (what partners match staff by), or None."""
    owner = record.body.get("leadInfo", {}).get("ownerID")
    if not owner:
        return None
    staff = await find(pool, record.provider, Kind.STAFF, owner, record.client_id, record.club_id)
    email = staff[0].body.get("userInfo", {}).get("email") if staff else None
    return email if isinstance(email, str) and email else None


async def lead_source_name(pool: Pool, record: StoredRecord) -> str | None:
    """The name of a user record's lead source: of the sender's lead-source record that its
    leadInfo.leadSource names, or the text itself when it names none."""
    given = record.body.get("leadInfo", {}).get("leadSource")
    if not given:
        return None
    saved = await find(
        pool, record.provider, Kind.LEADSOURCE, given, record.client_id, record.club_id
    )
    name = saved[0].body.get("leadInfo", {}).get("name", given) if saved else given
    return str(name)


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
