"""Dead letters for operators: list, show, replay, purge.

Replay is safe to repeat and to run from two places at once: each dead
letter is claimed (dead -> replayed or skipped) in the transaction that
publishes it, so only one claim wins, and a publish that fails leaves it
dead. A replay sends a fresh job for the record's latest stored version:
the delivery worker delivers it with today's mappings; when the partner
has that version already (a newer one was delivered since the letter
died), the letter is skipped, and the report says so. An inbox dead letter
(one the router could not store) goes back to the inbox as it was.
Replays go at a bounded rate, so that they cannot starve live traffic.
Every replay and purge is recorded in `operator_actions` (who, when, what,
the result) and each record it touched in `replays`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from hub.broker.topology import INBOX
from hub.delivery import job as job_message
from hub.delivery.job import DeliveryJob
from hub.errors import NotFound
from hub.ops.context import Ops
from hub.store import ops as queries
from hub.store import records
from hub.store.ops import DeadFilter, json_safe
from hub.store.pool import database_errors

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a replay (or purge) did with one dead letter."""

    id: int
    partner: str | None
    uuid: uuid.UUID | None
    outcome: str  # sent, skipped, taken (by someone else), purged; "would ..." in a dry run
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "partner": self.partner,
            "uuid": str(self.uuid) if self.uuid else None,
            "outcome": self.outcome,
            "detail": self.detail,
        }


@dataclass(slots=True)
class Report:
    action: str
    dry_run: bool
    action_id: int | None = None
    outcomes: list[Outcome] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for outcome in self.outcomes:
            counted[outcome.outcome] = counted.get(outcome.outcome, 0) + 1
        return counted

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "dry_run": self.dry_run,
            "action_id": self.action_id,
            "counts": self.counts(),
            "outcomes": [o.to_json() for o in self.outcomes],
        }


async def listing(ops: Ops, chosen: DeadFilter, limit: int | None = 500) -> list[dict[str, Any]]:
    rows = await queries.dead_letters(ops.pool, chosen, limit)
    return [json_safe(dict(row)) for row in rows]


async def show(ops: Ops, dead_id: int) -> dict[str, Any]:
    """One dead letter: the message, the record now, every attempt with its answer, replays."""
    row = await queries.dead_letter(ops.pool, dead_id)
    if row is None:
        raise NotFound(f"no dead letter {dead_id}")
    shown = dict(row)
    body: bytes = shown.pop("body")
    try:
        shown["body"] = orjson.loads(body)
    except orjson.JSONDecodeError:
        shown["body"] = body.decode("utf-8", "replace")
    record = await records.get(ops.pool, row["uuid"]) if row["uuid"] else None
    shown["record"] = None
    if record is not None:
        shown["record"] = {
            "uuid": record.uuid,
            "kind": record.kind.value,
            "provider": record.provider,
            "client": record.client,
            "club": record.club,
            "record_id": record.record_id,
            "version": record.version,
            "modified_at": record.modified_at,
            "body": record.body,
        }
    shown["attempts"] = (
        [dict(a) for a in await queries.attempts_of(ops.pool, row["uuid"], row["partner"])]
        if row["uuid"]
        else []
    )
    shown["replays"] = (
        [dict(r) for r in await queries.replays_of(ops.pool, row["uuid"])] if row["uuid"] else []
    )
    return json_safe(shown)  # type: ignore[no-any-return]


async def replay(
    ops: Ops,
    chosen: DeadFilter,
    operator: str,
    *,
    dry_run: bool = False,
    rate: float = 20.0,
    progress: Progress | None = None,
) -> Report:
    """Replay the dead letters `chosen` selects (only those still dead)."""
    rows = await queries.dead_letters(ops.pool, _still_dead(chosen))
    report = Report("replay", dry_run)
    if dry_run:
        for row in rows:
            report.outcomes.append(await _would_replay(ops, row))
        return report
    report.action_id = await queries.start_action(
        ops.pool, operator, "replay", {"filter": chosen.to_json(), "matched": len(rows)}
    )
    pace = Pace(rate)
    try:
        for done, row in enumerate(rows, 1):
            await pace.wait()
            report.outcomes.append(await _replay_one(ops, row["id"], operator, report.action_id))
            if progress is not None:
                progress(done, len(rows))
    finally:
        await queries.finish_action(ops.pool, report.action_id, {"counts": report.counts()})
    return report


async def purge(ops: Ops, chosen: DeadFilter, operator: str, *, dry_run: bool = False) -> Report:
    """Mark the dead letters `chosen` selects as purged: kept, but no longer waiting."""
    rows = await queries.dead_letters(ops.pool, _still_dead(chosen))
    report = Report("purge", dry_run)
    if dry_run:
        report.outcomes = [
            Outcome(r["id"], r["partner"], r["uuid"], "would purge", r["reason"]) for r in rows
        ]
        return report
    report.action_id = await queries.start_action(
        ops.pool, operator, "purge", {"filter": chosen.to_json(), "matched": len(rows)}
    )
    try:
        for row in rows:
            async with database_errors(), ops.pool.acquire() as connection:
                taken = await queries.claim(connection, row["id"], "purged", operator)
            report.outcomes.append(
                Outcome(
                    row["id"],
                    row["partner"],
                    row["uuid"],
                    "purged" if taken else "taken",
                    row["reason"] if taken else "no longer dead (replayed or purged meanwhile)",
                )
            )
    finally:
        await queries.finish_action(ops.pool, report.action_id, {"counts": report.counts()})
    return report


def _still_dead(chosen: DeadFilter) -> DeadFilter:
    return DeadFilter(
        ids=chosen.ids,
        partner=chosen.partner,
        reason=chosen.reason,
        since=chosen.since,
        until=chosen.until,
        record=chosen.record,
        state="dead",
    )


async def _would_replay(ops: Ops, row: Any) -> Outcome:
    if row["partner"] is None:
        return Outcome(row["id"], None, None, "would send", "back to the inbox")
    async with database_errors(), ops.pool.acquire() as connection:
        versions = await queries.record_version(connection, row["partner"], row["uuid"])
    verdict, detail = _verdict(row, versions)
    return Outcome(row["id"], row["partner"], row["uuid"], f"would {verdict}", detail)


def _verdict(row: Any, versions: tuple[int, int] | None) -> tuple[str, str]:
    """("send" | "skip", why) for a delivery dead letter, by where the partner stands."""
    if versions is None:
        return "skip", "the record is not in the store"
    latest, delivered = versions
    died = row["version"]
    if delivered >= latest:
        newer = f", newer than the dead version {died}" if died and latest > died else ""
        return "skip", f"{row['partner']} has version {latest} already{newer}"
    if died and latest > died:
        return "send", f"version {latest} (newer than the dead version {died})"
    return "send", f"version {latest}"


async def _replay_one(ops: Ops, dead_id: int, operator: str, action_id: int) -> Outcome:
    async with database_errors(), ops.pool.acquire() as connection, connection.transaction():
        # Claimed first: a second operator's claim waits for this commit and then fails.
        row = await queries.claim(connection, dead_id, "replayed", operator)
        if row is None:
            return Outcome(dead_id, None, None, "taken", "no longer dead (replayed meanwhile)")
        partner, record = row["partner"], row["uuid"]
        if partner is None:
            await _publish_inbox(ops, row)
            await queries.note_replay(
                connection, action_id, dead_id, None, record, None, "sent", "back to the inbox"
            )
            return Outcome(dead_id, None, record, "sent", "back to the inbox")
        versions = await queries.record_version(connection, partner, record)
        verdict, detail = _verdict(row, versions)
        if verdict == "skip":
            await connection.execute(
                "UPDATE dead_letters SET state = 'skipped' WHERE id = $1", dead_id
            )
            await queries.note_replay(
                connection, action_id, dead_id, partner, record, row["version"], "skipped", detail
            )
            return Outcome(dead_id, partner, record, "skipped", detail)
        assert versions is not None
        job = DeliveryJob(record, partner, versions[0])
        await ops.publisher.publish(
            ops.topology.deliver_exchange.name,
            partner,
            job_message.encode([job]),
            message_id=job.message_id,
            headers={"x-hub-replay": action_id},
        )
        await queries.note_replay(
            connection, action_id, dead_id, partner, record, job.version, "sent", detail
        )
        return Outcome(dead_id, partner, record, "sent", detail)


async def _publish_inbox(ops: Ops, row: Any) -> None:
    await ops.publisher.publish(
        ops.topology.inbox_exchange.name,
        INBOX,
        row["body"],
        message_id=row["message_id"],
        headers={"x-hub-replay": True},
    )


class Pace:
    """At most `rate` a second."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        if self._next > now:
            await asyncio.sleep(self._next - now)
        self._next = max(self._next, now) + self._interval
