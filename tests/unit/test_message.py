"""The inbox message: round trip, schema, and what counts as poison."""

from __future__ import annotations

import datetime
import json
import uuid
from pathlib import Path

import jsonschema
import pytest

from hub.connector.documents import Kind
from hub.errors import PoisonMessage
from hub.message import Inbound
from hub.records import hub_uuid

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "message.schema.json").read_text())


def sample() -> Inbound:
    return Inbound(
        message_id=uuid.uuid4(),
        uuid=hub_uuid("intouch", "456", "123", Kind.USER, "R-1"),
        kind=Kind.USER,
        provider="intouch",
        client="acme",
        club="downtown",
        client_id="456",
        club_id="123",
        record_id="R-1",
        body={"userInfo": {"firstname": "Ada", "lastname": "Lövelace"}},
        received_at=datetime.datetime.now(datetime.UTC),
    )


def test_round_trip_and_schema() -> None:
    message = sample()
    raw = message.encode()
    jsonschema.validate(json.loads(raw), SCHEMA, format_checker=jsonschema.FormatChecker())
    assert Inbound.decode(raw) == message


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[]",
        b'{"v": 2}',
        json.dumps({**json.loads(sample().encode()), "kind": "member"}).encode(),
        json.dumps({**json.loads(sample().encode()), "body": {"userInfo": {"a": 1}}}).encode(),
        json.dumps(
            {**json.loads(sample().encode()), "received_at": "2026-01-01T00:00:00"}
        ).encode(),
        json.dumps({**json.loads(sample().encode()), "provider": ""}).encode(),
    ],
)
def test_poison_is_named(raw: bytes) -> None:
    with pytest.raises(PoisonMessage):
        Inbound.decode(raw)


def test_the_hub_uuid_is_stable_and_keyed() -> None:
    one = hub_uuid("intouch", "456", "123", Kind.USER, "R-1")
    assert one == hub_uuid("intouch", "456", "123", Kind.USER, "R-1")
    assert one != hub_uuid("intouch", "456", "123", Kind.STAFF, "R-1")
    assert one != hub_uuid("clubos", "456", "123", Kind.USER, "R-1")
    assert one.version == 5
