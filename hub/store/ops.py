"""Queries for operators: dead letters, the backlog, a record's path, gaps, the audit.

Read by `hub.ops` (the CLI, the ops API and the dashboard). The writes here
are the operators' own: a dead letter's state (claimed atomically, so that
two operators replaying at once send it once), the actions they took and
each record an action sent again.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from hub.records import StoredRecord
from hub.store.pool import Connection, Pool, database_errors
from hub.store.records import COLUMNS, row_to_record


@dataclass(frozen=True, slots=True)
class DeadFilter:
    """Which dead letters: every field given narrows the choice (all of them: AND)."""

    ids: Sequence[int] = ()
    partner: str | None = None
    reason: str | None = None  # a part of the reason, case-insensitive
    since: datetime.datetime | None = None
    until: datetime.datetime | None = None
    record: uuid.UUID | None = None
    state: str | None = "dead"  # None: any state

    def where(self, first: int = 1) -> tuple[str, list[Any]]:
        """The SQL condition and its arguments, numbered from `first`."""
        conditions: list[str] = []
        args: list[Any] = []

        def add(condition: str, value: Any) -> None:
            args.append(value)
            conditions.append(condition.replace("$?", f"${first + len(args) - 1}"))

        if self.ids:
            add("id = ANY($?::bigint[])", list(self.ids))
        if self.partner == "inbox":  # what the router could not store
            conditions.append("partner IS NULL")
        elif self.partner is not None:
            add("partner = $?", self.partner)
        if self.reason:
            add("reason ILIKE '%' || $? || '%'", self.reason)
        if self.since is not None:
            add("dead_at >= $?", self.since)
        if self.until is not None:
            add("dead_at < $?", self.until)
        if self.record is not None:
            add("uuid = $?", self.record)
        if self.state is not None:
            add("state = $?", self.state)
        return (" AND ".join(conditions) or "true"), args

    def to_json(self) -> dict[str, Any]:
        return {
            "ids": list(self.ids),
            "partner": self.partner,
            "reason": self.reason,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "record": str(self.record) if self.record else None,
            "state": self.state,
        }


_DEAD_COLUMNS = (
    "id, message_id, queue, partner, uuid, version, reason, dead_at, deaths, state,"
    " settled_at, settled_by"
)


async def dead_letters(pool: Pool, chosen: DeadFilter, limit: int | None = None) -> list[Any]:
    where, args = chosen.where()
    limit_sql = f" LIMIT {int(limit)}" if limit else ""
    async with database_errors():
        return list(
            await pool.fetch(
                f"SELECT {_DEAD_COLUMNS} FROM dead_letters WHERE {where} ORDER BY id{limit_sql}",
                *args,
            )
        )


async def dead_letter(pool: Pool, dead_id: int) -> Any:
    async with database_errors():
        return await pool.fetchrow(
            f"SELECT {_DEAD_COLUMNS}, body, headers FROM dead_letters WHERE id = $1", dead_id
        )


async def dead_summary(pool: Pool) -> list[Any]:
    """Dead letters waiting for an operator, by partner and reason."""
    async with database_errors():
        return list(
            await pool.fetch(
                "SELECT coalesce(partner, '(inbox)') AS partner, reason, count(*) AS count,"
                " max(dead_at) AS last FROM dead_letters WHERE state = 'dead'"
                " GROUP BY 1, 2 ORDER BY 1, count(*) DESC"
            )
        )


async def claim(
    connection: Connection, dead_id: int, state: str, operator: str
) -> Any:  # the row, or None if it was not dead (any more)
    """Take one dead letter out of the dead state; only one of two operators gets it."""
    return await connection.fetchrow(
        f"UPDATE dead_letters SET state = $2, settled_at = now(), settled_by = $3"
        f" WHERE id = $1 AND state = 'dead' RETURNING {_DEAD_COLUMNS}, body",
        dead_id,
        state,
        operator,
    )


async def record_version(
    connection: Connection, partner: str, record: uuid.UUID
) -> tuple[int, int] | None:
    """(the record's latest version, the version the partner has), or None if no record."""
    row = await connection.fetchrow(
        "SELECT r.version, coalesce(d.delivered_version, 0) AS delivered FROM records AS r"
        " LEFT JOIN deliveries AS d ON d.uuid = r.uuid AND d.partner = $1 WHERE r.uuid = $2",
        partner,
        record,
    )
    return None if row is None else (row["version"], row["delivered"])


async def start_action(pool: Pool, operator: str, action: str, target: dict[str, Any]) -> int:
    async with database_errors():
        action_id: int = await pool.fetchval(
            "INSERT INTO operator_actions (operator, action, target) VALUES ($1, $2, $3)"
            " RETURNING id",
            operator,
            action,
            target,
        )
    return action_id


async def finish_action(pool: Pool, action_id: int, result: dict[str, Any]) -> None:
    async with database_errors():
        await pool.execute(
            "UPDATE operator_actions SET result = $2 WHERE id = $1", action_id, result
        )


async def note_replay(
    connection: Connection,
    action_id: int,
    dead_id: int | None,
    partner: str | None,
    record: uuid.UUID | None,
    version: int | None,
    outcome: str,
    detail: str,
) -> None:
    await connection.execute(
        "INSERT INTO replays (action_id, dead_letter_id, partner, uuid, version, outcome, detail)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        action_id,
        dead_id,
        partner,
        record,
        version,
        outcome,
        detail,
    )


async def actions(pool: Pool, limit: int = 50) -> list[Any]:
    async with database_errors():
        return list(
            await pool.fetch(
                "SELECT id, at, operator, action, target, result FROM operator_actions"
                " ORDER BY id DESC LIMIT $1",
                limit,
            )
        )


async def backlog(pool: Pool, window: datetime.timedelta) -> dict[str, dict[str, Any]]:
    """Per partner: records waiting, the oldest wait, deliveries and failures in `window`,
    the last error."""
    async with database_errors():
        waiting = await pool.fetch(
            "SELECT d.partner, count(*) AS waiting, min(d.routed_at) AS oldest"
            " FROM deliveries AS d WHERE d.routed_version > d.delivered_version"
            " AND NOT EXISTS (SELECT 1 FROM dead_letters AS x WHERE x.uuid = d.uuid"
            "   AND x.partner = d.partner AND x.state = 'dead')"
            " GROUP BY d.partner"
        )
        recent = await pool.fetch(
            "SELECT partner, count(*) FILTER (WHERE outcome = 'delivered') AS delivered,"
            " count(*) FILTER (WHERE outcome IN ('transient', 'permanent')) AS failed"
            " FROM delivery_attempts WHERE at > now() - $1::interval GROUP BY partner",
            window,
        )
        errors = await pool.fetch(
            "SELECT DISTINCT ON (partner) partner, at, status, error FROM delivery_attempts"
            " WHERE error IS NOT NULL ORDER BY partner, id DESC"
        )
        health = await pool.fetch("SELECT partner, state, since, last_error FROM partner_health")
    out: dict[str, dict[str, Any]] = {}
    for row in waiting:
        out.setdefault(row["partner"], {}).update(waiting=row["waiting"], oldest=row["oldest"])
    for row in recent:
        out.setdefault(row["partner"], {}).update(delivered=row["delivered"], failed=row["failed"])
    for row in errors:
        out.setdefault(row["partner"], {}).update(
            last_error=row["error"], last_error_at=row["at"], last_status=row["status"]
        )
    for row in health:
        out.setdefault(row["partner"], {}).update(circuit=row["state"], circuit_since=row["since"])
    return out


async def set_health(pool: Pool, partner: str, state: str, error: str | None) -> None:
    async with database_errors():
        await pool.execute(
            "INSERT INTO partner_health (partner, state, since, last_error)"
            " VALUES ($1, $2, now(), $3) ON CONFLICT (partner) DO UPDATE SET"
            " state = EXCLUDED.state, since = now(),"
            " last_error = coalesce(EXCLUDED.last_error, partner_health.last_error)",
            partner,
            state,
            error,
        )


# A record's path, each part in time order.


async def receipts_of(pool: Pool, record: uuid.UUID) -> list[Any]:
    async with database_errors():
        return list(
            await pool.fetch(
                "SELECT message_id, sender, received_at, stored_at, version, outcome FROM receipts"
                " WHERE uuid = $1 ORDER BY received_at",
                record,
            )
        )


async def standings_of(pool: Pool, record: uuid.UUID) -> list[Any]:
    async with database_errors():
        return list(
            await pool.fetch(
                "SELECT partner, partner_id, delivered_version, delivered_at, routed_version,"
                " routed_at FROM deliveries WHERE uuid = $1 ORDER BY partner",
                record,
            )
        )


async def attempts_of(pool: Pool, record: uuid.UUID, partner: str | None = None) -> list[Any]:
    async with database_errors():
        return list(
            await pool.fetch(
                "SELECT id, partner, version, attempt, at, outcome, status, latency_ms, error,"
                " answer, notes FROM delivery_attempts WHERE uuid = $1"
                " AND ($2::text IS NULL OR partner = $2) ORDER BY at, id",
                record,
                partner,
            )
        )


async def replays_of(pool: Pool, record: uuid.UUID) -> list[Any]:
    async with database_errors():
        return list(
            await pool.fetch(
                "SELECT r.id, r.action_id, r.dead_letter_id, r.partner, r.version, r.at,"
                " r.outcome, r.detail, a.operator, a.action FROM replays AS r"
                " JOIN operator_actions AS a ON a.id = r.action_id WHERE r.uuid = $1"
                " ORDER BY r.at, r.id",
                record,
            )
        )


async def find_record(pool: Pool, provider: str, record_id: str) -> list[uuid.UUID]:
    """The hub UUIDs of what a provider calls RECORD_ID (any kind, club or client)."""
    async with database_errors():
        rows = await pool.fetch(
            "SELECT uuid FROM records WHERE provider = $1 AND record_id = $2"
            " UNION SELECT uuid FROM deliveries WHERE partner = $1 AND partner_id = $2",
            provider,
            record_id,
        )
    return [row["uuid"] for row in rows]


async def gaps(pool: Pool, partner: str | None = None) -> list[Any]:
    async with database_errors():
        return list(
            await pool.fetch(
                "SELECT id, partner, client_id, club_id, kind, key, first_seen, last_seen, count"
                " FROM mapping_gaps WHERE ($1::text IS NULL OR partner = $1)"
                " ORDER BY last_seen DESC, id",
                partner,
            )
        )


async def gap(pool: Pool, gap_id: int) -> Any:
    async with database_errors():
        return await pool.fetchrow(
            "SELECT id, partner, client_id, club_id, kind, key, first_seen, last_seen, count"
            " FROM mapping_gaps WHERE id = $1",
            gap_id,
        )


async def delivered_in_club(pool: Pool, partner: str, client: str, club: str) -> list[StoredRecord]:
    """The user records of a club that the partner has (some version of), not its own."""
    columns = ", ".join(f"r.{c}" for c in COLUMNS.split(", "))
    async with database_errors():
        rows = await pool.fetch(
            f"SELECT {columns} FROM records AS r"
            " JOIN deliveries AS d ON d.uuid = r.uuid AND d.partner = $1"
            " WHERE r.client = $2 AND r.club = $3 AND r.kind = 'user'"
            " AND d.delivered_version > 0 AND r.provider <> $1 ORDER BY r.uuid",
            partner,
            client,
            club,
        )
    return [row_to_record(row) for row in rows]


def json_safe(value: Any) -> Any:
    """A row's values as JSON (datetimes as ISO text, UUIDs as text)."""
    return orjson.loads(orjson.dumps(value, default=str))
