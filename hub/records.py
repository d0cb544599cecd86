"""What the hub knows of a record, independent of wire formats and storage.

The hub UUID of a record is derived, never stored first: uuid5 of (provider,
client ID, club ID, kind, record ID), so that the ingress can answer without
a database and a re-sent record is the same record.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

from hub.connector.documents import Body, Kind

# Fixed forever: changing it would give every record a new UUID.
HUB_NAMESPACE_UUID = uuid.UUID("8d2f6a0e-3b1c-5f4e-9a7d-1c0b2e3f4a5b")
_SEP = "\x1f"  # ASCII unit separator: cannot appear in an XML 1.0 text value


def hub_uuid(provider: str, client_id: str, club_id: str, kind: Kind, record_id: str) -> uuid.UUID:
    """The record's UUID at the hub; `provider` is the provider's name."""
    key = _SEP.join((provider, client_id, club_id, kind.value, record_id))
    return uuid.uuid5(HUB_NAMESPACE_UUID, key)


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as the store keeps it, with the read-only fields."""

    uuid: uuid.UUID
    kind: Kind
    provider: str
    client: str  # the hub's names of its client and club
    club: str
    client_id: str
    club_id: str
    record_id: str
    body: Body
    version: int
    created_by: str
    created_at: datetime.datetime
    modified_by: str
    modified_at: datetime.datetime
