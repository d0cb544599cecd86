"""Queries of dead letters: what could not be delivered or routed, kept for operators.

One row per dead message (by message id and queue): a message that dies again
after a replay updates its row (reason, headers, time) and counts the deaths.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hub.store.pool import Pool, database_errors


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message_id: str
    queue: str
    partner: str | None
    uuid: uuid.UUID | None
    version: int | None
    reason: str
    body: bytes
    headers: dict[str, Any]


async def keep(pool: Pool, dead: Sequence[DeadLetter]) -> None:
    """Keep dead letters (the jobs of one dead message), in one transaction."""
    async with database_errors(), pool.acquire() as connection, connection.transaction():
        await connection.executemany(
            "INSERT INTO dead_letters (message_id, queue, partner, uuid, version, reason, body,"
            " headers) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " ON CONFLICT (message_id) DO UPDATE SET reason = EXCLUDED.reason,"
            " headers = EXCLUDED.headers, dead_at = now(), deaths = dead_letters.deaths + 1,"
            " state = 'dead', settled_at = NULL, settled_by = NULL",
            [
                (d.message_id, d.queue, d.partner, d.uuid, d.version, d.reason, d.body, d.headers)
                for d in dead
            ],
        )
