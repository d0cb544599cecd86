"""Mapping gaps: the owners and lead sources a partner did not match, and what to do
once the partner has them: drop the cached lists (`refresh`), and deliver again
the records that went without (`redeliver`).
"""

from __future__ import annotations

from typing import Any

from hub.delivery import job as job_message
from hub.delivery.job import DeliveryJob
from hub.delivery.mapping import LEAD_SOURCE, STAFF, normalise
from hub.errors import NotFound
from hub.ops.context import Ops
from hub.ops.dead import Outcome, Pace, Progress, Report
from hub.records import StoredRecord
from hub.store import mappings, records
from hub.store import ops as queries
from hub.store.ops import json_safe
from hub.store.pool import database_errors


async def listing(ops: Ops, partner: str | None = None) -> list[dict[str, Any]]:
    return [json_safe(dict(row)) for row in await queries.gaps(ops.pool, partner)]


async def refresh(ops: Ops, partner: str, operator: str) -> dict[str, Any]:
    """Forget the partner's cached staff and lead-source lists: the next delivery lists again."""
    if partner not in {p.name for p in ops.tenancy.receivers()}:
        raise NotFound(f"no receiving partner {partner!r} in the tenancy")
    action_id = await queries.start_action(ops.pool, operator, "refresh", {"partner": partner})
    await mappings.forget(ops.pool, [partner])
    result = {"partner": partner, "dropped": "cached staff and lead-source lists"}
    await queries.finish_action(ops.pool, action_id, result)
    return {"action_id": action_id, **result}


async def redeliver(
    ops: Ops,
    gap_id: int,
    operator: str,
    *,
    dry_run: bool = False,
    rate: float = 20.0,
    progress: Progress | None = None,
) -> Report:
    """Deliver again, with today's mappings, the records that met this gap at its partner."""
    gap = await queries.gap(ops.pool, gap_id)
    if gap is None:
        raise NotFound(f"no mapping gap {gap_id}")
    partner = gap["partner"]
    club = ops.tenancy.club(partner, gap["client_id"], gap["club_id"])
    if club is None:
        raise NotFound(
            f"gap {gap_id}: {partner} club {gap['client_id']}/{gap['club_id']}"
            " is not in the tenancy any more"
        )
    candidates = await queries.delivered_in_club(ops.pool, partner, club.client, club.name)
    hits = [record for record in candidates if await _met(ops, record, gap["kind"], gap["key"])]
    report = Report("redeliver", dry_run)
    if dry_run:
        report.outcomes = [
            Outcome(gap_id, partner, record.uuid, "would send", f"version {record.version}")
            for record in hits
        ]
        return report
    report.action_id = await queries.start_action(
        ops.pool, operator, "redeliver", {"gap": gap_id, "matched": len(hits)}
    )
    pace = Pace(rate)
    try:
        for done, record in enumerate(hits, 1):
            await pace.wait()
            job = DeliveryJob(record.uuid, partner, record.version, again=True)
            await ops.publisher.publish(
                ops.topology.deliver_exchange.name,
                partner,
                job_message.encode([job]),
                message_id=f"{job.message_id}:{report.action_id}",
                headers={"x-hub-redeliver": report.action_id},
            )
            detail = f"version {record.version}, gap {gap_id} ({gap['kind']} {gap['key']!r})"
            async with database_errors(), ops.pool.acquire() as connection:
                await queries.note_replay(
                    connection,
                    report.action_id,
                    None,
                    partner,
                    record.uuid,
                    record.version,
                    "sent",
                    detail,
                )
            report.outcomes.append(Outcome(gap_id, partner, record.uuid, "sent", detail))
            if progress is not None:
                progress(done, len(hits))
    finally:
        await queries.finish_action(ops.pool, report.action_id, {"counts": report.counts()})
    return report


async def _met(ops: Ops, record: StoredRecord, kind: str, key: str) -> bool:
    """Whether this record's owner (staff) or lead source is the gap's key."""
    if kind == STAFF:
        found = await records.owner_email(ops.pool, record)
    elif kind == LEAD_SOURCE:
        found = await records.lead_source_name(ops.pool, record)
    else:
        return False
    return found is not None and normalise(found) == key
