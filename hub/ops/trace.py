"""A record's whole path: received, stored, routed, every attempt, partner IDs,
dead letters, replays; as a timeline and as the record's standing per partner.
"""

from __future__ import annotations

import uuid
from typing import Any

from hub.errors import NotFound
from hub.ops.context import Ops
from hub.store import ops as queries
from hub.store import records
from hub.store.ops import DeadFilter, json_safe


async def resolve(ops: Ops, ref: str) -> list[uuid.UUID]:
    """UUID, or PROVIDER:RECORD_ID (the provider's recordID, or a partner's ID for it)."""
    try:
        return [uuid.UUID(ref)]
    except ValueError:
        pass
    provider, sep, record_id = ref.partition(":")
    if not sep or not provider or not record_id:
        raise NotFound(f"{ref!r} is neither a UUID nor PROVIDER:RECORD_ID")
    found = await queries.find_record(ops.pool, provider, record_id)
    if not found:
        raise NotFound(f"no record that {provider!r} knows as {record_id!r}")
    return found


async def trace(ops: Ops, record_uuid: uuid.UUID) -> dict[str, Any]:
    record = await records.get(ops.pool, record_uuid)
    if record is None:
        raise NotFound(f"no record {record_uuid}")
    receipts = await queries.receipts_of(ops.pool, record_uuid)
    standings = await queries.standings_of(ops.pool, record_uuid)
    attempts = await queries.attempts_of(ops.pool, record_uuid)
    dead = await queries.dead_letters(ops.pool, DeadFilter(record=record_uuid, state=None))
    replays = await queries.replays_of(ops.pool, record_uuid)
    events: list[dict[str, Any]] = []
    for r in receipts:
        events.append(
            {
                "at": r["received_at"],
                "event": "received",
                "detail": f"from {r['sender'] or record.provider}: {r['outcome']},"
                f" version {r['version']} (stored {r['stored_at']:%H:%M:%S.%f})",
            }
        )
    for s in standings:
        if s["routed_at"] is not None:
            events.append(
                {
                    "at": s["routed_at"],
                    "event": "routed",
                    "partner": s["partner"],
                    "detail": f"to {s['partner']}, version {s['routed_version']}",
                }
            )
    for a in attempts:
        answer = f" {a['status']}" if a["status"] else ""
        error = f": {a['error']}" if a["error"] else ""
        events.append(
            {
                "at": a["at"],
                "event": "attempt",
                "partner": a["partner"],
                "detail": f"{a['partner']} #{a['attempt']} v{a['version']}:"
                f" {a['outcome']}{answer}{error} ({a['latency_ms']} ms)",
                "answer": a["answer"],
                "notes": list(a["notes"]),
            }
        )
    for d in dead:
        events.append(
            {
                "at": d["dead_at"],
                "event": "dead letter",
                "partner": d["partner"],
                "detail": f"#{d['id']} at {d['partner'] or 'the inbox'}: {d['reason']}"
                f" (now {d['state']})",
            }
        )
    for r in replays:
        events.append(
            {
                "at": r["at"],
                "event": r["action"],
                "partner": r["partner"],
                "detail": f"by {r['operator']} (action {r['action_id']}): {r['outcome']},"
                f" {r['detail']}",
            }
        )
    events.sort(key=lambda e: e["at"])
    return json_safe(  # type: ignore[no-any-return]
        {
            "record": {
                "uuid": record.uuid,
                "kind": record.kind.value,
                "provider": record.provider,
                "client": record.client,
                "club": record.club,
                "client_id": record.client_id,
                "club_id": record.club_id,
                "record_id": record.record_id,
                "version": record.version,
                "created_at": record.created_at,
                "modified_at": record.modified_at,
                "modified_by": record.modified_by,
            },
            "partners": [
                {
                    "partner": s["partner"],
                    "partner_id": s["partner_id"],
                    "delivered_version": s["delivered_version"],
                    "delivered_at": s["delivered_at"],
                    "routed_version": s["routed_version"],
                    "waiting": s["routed_version"] > s["delivered_version"],
                }
                for s in standings
            ],
            "events": events,
        }
    )
