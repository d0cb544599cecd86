"""The message on a partner's delivery queue: deliver record UUID (at least VERSION).

The message id is `uuid:partner:version`: the same job published twice (a
router redelivery) is recognisably the same. The worker always delivers the
latest stored version, so a job only says which record and partner.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson

from hub.errors import PoisonMessage


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    uuid: uuid.UUID
    partner: str
    version: int

    @property
    def message_id(self) -> str:
        return f"{self.uuid}:{self.partner}:{self.version}"

    def encode(self) -> bytes:
        return orjson.dumps(
            {"v": 1, "uuid": str(self.uuid), "partner": self.partner, "version": self.version}
        )

    @classmethod
    def decode(cls, raw: bytes) -> DeliveryJob:
        try:
            data = orjson.loads(raw)
            version = data["version"]
            if data["v"] != 1 or not isinstance(version, int) or version < 1:
                raise ValueError("not version 1, or no positive record version")
            return cls(uuid.UUID(data["uuid"]), str(data["partner"]), version)
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            raise PoisonMessage(f"not a delivery job: {type(exc).__name__}: {exc}") from exc
