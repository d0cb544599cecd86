"""The dead-letter keeper: moves dead letters from RabbitMQ into PostgreSQL.

Consumes every dead-letter queue of the topology and keeps each message with
its queue, partner, record and reason (`x-hub-reason` when the hub
dead-lettered it, else RabbitMQ's `x-death` reason, e.g. `delivery_limit`).
The attempts and their answers are in `delivery_attempts` already. A
message is acked only once its row is committed.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import orjson

from hub.broker.consumer import Incoming
from hub.delivery import job as job_message
from hub.delivery.job import DeliveryJob
from hub.errors import PoisonMessage
from hub.store import dead_letters
from hub.store.pool import Pool


class Keeper:
    def __init__(self, pool: Pool, queue: str, partner: str | None) -> None:
        self._pool = pool
        self._queue = queue
        self._partner = partner

    async def handle(self, incoming: Incoming) -> None:
        headers = _json_safe(dict(incoming.headers))
        reason = _reason(headers)
        jobs = _jobs(incoming.body) if self._partner else []
        if jobs:
            # A message of several jobs (dead through the delivery limit): a row per job, so
            # that each is seen and replayed on its own.
            await dead_letters.keep(
                self._pool,
                [
                    self._dead(job.message_id, job.uuid, job.version, reason, job.encode(), headers)
                    for job in jobs
                ]
                if len(jobs) > 1
                else [
                    self._dead(
                        incoming.message_id or jobs[0].message_id,
                        jobs[0].uuid,
                        jobs[0].version,
                        reason,
                        incoming.body,
                        headers,
                    )
                ],
            )
            return
        message_id = incoming.message_id or "sha256:" + hashlib.sha256(incoming.body).hexdigest()
        await dead_letters.keep(
            self._pool, [self._dead(message_id, None, None, reason, incoming.body, headers)]
        )

    def _dead(
        self,
        message_id: str,
        record: uuid.UUID | None,
        version: int | None,
        reason: str,
        body: bytes,
        headers: dict[str, Any],
    ) -> dead_letters.DeadLetter:
        return dead_letters.DeadLetter(
            message_id=message_id,
            queue=self._queue,
            partner=self._partner,
            uuid=record,
            version=version,
            reason=reason,
            body=body,
            headers=headers,
        )


def _jobs(body: bytes) -> list[DeliveryJob]:
    try:
        return job_message.decode(body)
    except PoisonMessage:
        return []


def _reason(headers: dict[str, Any]) -> str:
    if "x-hub-reason" in headers:
        return str(headers["x-hub-reason"])
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        return f"rabbitmq: {deaths[0].get('reason', 'unknown')}"
    return "unknown"


def _json_safe(value: Any) -> Any:
    """AMQP headers (bytes, datetimes, nested tables) as plain JSON."""
    return orjson.loads(orjson.dumps(value, default=_default))


def _default(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
