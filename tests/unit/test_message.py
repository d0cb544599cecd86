"""The inbox message: round trip, schema, and what counts as poison."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from hub.connector.documents import Kind
from hub.errors import PoisonMessage
from hub.message import Inbound, decode_batch, encode_batch
from hub.records import hub_uuid
from tests.fixtures_tenancy import inbound

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "message.schema.json").read_text())


def sample() -> Inbound:
    return inbound()


def test_round_trip_and_schema() -> None:
    saves = [sample(), sample()]
    raw = encode_batch(saves)
    jsonschema.validate(json.loads(raw), SCHEMA, format_checker=jsonschema.FormatChecker())
    assert decode_batch(raw) == saves


def batch_with(**change: object) -> bytes:
    return json.dumps({"v": 1, "records": [{**sample().to_json(), **change}]}).encode()


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[]",
        b'{"v": 2}',
        b'{"v": 1, "records": []}',
        batch_with(kind="member"),
        batch_with(body={"userInfo": {"a": 1}}),
        batch_with(received_at="2026-01-01T00:00:00"),
        batch_with(provider=""),
    ],
)
def test_poison_is_named(raw: bytes) -> None:
    with pytest.raises(PoisonMessage):
        decode_batch(raw)


def test_the_hub_uuid_is_stable_and_keyed() -> None:
    one = hub_uuid("intouch", "456", "123", Kind.USER, "R-1")
    assert one == hub_uuid("intouch", "456", "123", Kind.USER, "R-1")
    assert one != hub_uuid("intouch", "456", "123", Kind.STAFF, "R-1")
    assert one != hub_uuid("clubos", "456", "123", Kind.USER, "R-1")
    assert one.version == 5
