"""The messages the ingress puts in the inbox for the router.

One inbox message carries a batch of saves (`{"v": 1, "records": [...]}`):
the ingress publishes the saves that arrive while a publish is in flight as
one confirmed message (group commit), so that the broker confirms many
records at once. JSON, described by `schemas/message.schema.json`. Each
save's `message_id` is unique per request, so that a consumer can tell a
redelivery from a new save of the same record; `received_at` orders saves of
one record. Decoding a message that is not this shape raises PoisonMessage:
such a message is dead-lettered, never retried.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from hub.connector.documents import Body, Kind
from hub.errors import PoisonMessage

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Inbound:
    """A record saved by a provider, confirmed by the broker, not yet stored."""

    message_id: uuid.UUID
    uuid: uuid.UUID
    kind: Kind
    provider: str
    client: str
    club: str
    client_id: str
    club_id: str
    record_id: str
    body: Body
    received_at: datetime.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": str(self.message_id),
            "uuid": str(self.uuid),
            "kind": self.kind.value,
            "provider": self.provider,
            "client": self.client,
            "club": self.club,
            "client_id": self.client_id,
            "club_id": self.club_id,
            "record_id": self.record_id,
            "body": self.body,
            "received_at": self.received_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Inbound:
        """One save of a batch; ValueError, KeyError or TypeError if malformed."""
        received_at = datetime.datetime.fromisoformat(data["received_at"])
        if received_at.tzinfo is None:
            raise ValueError("received_at has no time zone")
        return cls(
            message_id=uuid.UUID(data["message_id"]),
            uuid=uuid.UUID(data["uuid"]),
            kind=Kind(data["kind"]),
            provider=_text(data, "provider"),
            client=_text(data, "client"),
            club=_text(data, "club"),
            client_id=_text(data, "client_id"),
            club_id=_text(data, "club_id"),
            record_id=_text(data, "record_id"),
            body=_body(data["body"]),
            received_at=received_at,
        )


def encode_batch(saves: Sequence[Inbound]) -> bytes:
    return orjson.dumps({"v": SCHEMA_VERSION, "records": [s.to_json() for s in saves]})


def decode_batch(raw: bytes) -> list[Inbound]:
    try:
        data = orjson.loads(raw)
        if data["v"] != SCHEMA_VERSION:
            raise PoisonMessage(f"message schema version {data['v']!r} is not {SCHEMA_VERSION}")
        records = data["records"]
        if not isinstance(records, list) or not records:
            raise ValueError("records must be a non-empty list")
        return [Inbound.from_json(r) for r in records]
    except PoisonMessage:
        raise
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise PoisonMessage(f"not an inbox message: {type(exc).__name__}: {exc}") from exc


def _text(data: dict[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string")
    return value


def _body(value: Any) -> Body:
    if not isinstance(value, dict) or not all(
        isinstance(section, dict) and all(isinstance(v, str) for v in section.values())
        for section in value.values()
    ):
        raise ValueError("body must map sections to string fields")
    return value
