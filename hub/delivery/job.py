"""The messages on a partner's delivery queue: deliver record UUID (at least VERSION).

One message carries the jobs of one partner from one inbox batch (`encode`):
a queue pays its per-message costs (publish, confirm, deliver, ack) once per
batch, not once per record. A job that fails is split off and travels alone
from then on (delay tiers, dead letters), as a message of one job.

A job's id is `uuid:partner:version`, so the same job published twice (a
router redelivery) is recognisably the same; a message of several jobs is
named after its first job and their count. The worker always delivers the
latest stored version, so a job only says which record and partner.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from hub.errors import PoisonMessage


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    uuid: uuid.UUID
    partner: str
    version: int
    # An operator's redelivery: save the latest version even if the partner has it
    # (e.g. once a mapping gap is closed). Only ever a message of one job.
    again: bool = False

    @property
    def message_id(self) -> str:
        return f"{self.uuid}:{self.partner}:{self.version}" + (":again" if self.again else "")

    def encode(self) -> bytes:
        return encode([self])


def message_id(jobs: Sequence[DeliveryJob]) -> str:
    """The id of the message that carries these jobs."""
    first = jobs[0].message_id
    return first if len(jobs) == 1 else f"{first}+{len(jobs) - 1}"


def encode(jobs: Sequence[DeliveryJob]) -> bytes:
    """One partner's jobs as one message body."""
    if not jobs or any(job.partner != jobs[0].partner for job in jobs):
        raise ValueError("a message carries one or more jobs of one partner")
    if len(jobs) == 1:
        job = jobs[0]
        one = {"v": 1, "uuid": str(job.uuid), "partner": job.partner, "version": job.version}
        return orjson.dumps(one | {"again": True} if job.again else one)
    if any(job.again for job in jobs):
        raise ValueError("a redelivery is a message of its own")
    return orjson.dumps(
        {
            "v": 1,
            "partner": jobs[0].partner,
            "jobs": [{"uuid": str(job.uuid), "version": job.version} for job in jobs],
        }
    )


def decode(raw: bytes) -> list[DeliveryJob]:
    """The jobs of a message (one or more, of one partner), or PoisonMessage."""
    try:
        data = orjson.loads(raw)
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("not a version 1 job message")
        partner = str(data["partner"])
        items = data.get("jobs", [data])
        if not isinstance(items, list) or not items:
            raise ValueError("jobs is not a list of one or more jobs")
        return [_job(item, partner) for item in items]
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise PoisonMessage(f"not a delivery job: {type(exc).__name__}: {exc}") from exc


def _job(item: Any, partner: str) -> DeliveryJob:
    version = item["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError("no positive record version")
    return DeliveryJob(uuid.UUID(item["uuid"]), partner, version, item.get("again") is True)
