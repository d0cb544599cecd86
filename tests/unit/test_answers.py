"""A record answer carries every field that was saved, valid by its XSD.

(Each answer document against its XSD: test_xsd_agreement.py.)
"""

from __future__ import annotations

import datetime
import uuid
from pathlib import Path

import pytest
from lxml import etree

from hub.connector import answers
from hub.connector.documents import Kind, parse
from hub.records import StoredRecord

SCHEMAS = Path(__file__).parents[2] / "schemas" / "connector"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "xml"
NOW = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=datetime.UTC)


def schema(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / name)))


def stored(kind: Kind, body: bytes) -> StoredRecord:
    document = parse(kind, body)
    return StoredRecord(
        uuid=uuid.uuid4(),
        kind=kind,
        provider="intouch",
        client_id=document.client_id,
        club_id=document.club_id,
        record_id=document.record_id,
        body=document.body,
        version=1,
        created_by="intouch",
        created_at=NOW,
        modified_by="intouch",
        modified_at=NOW,
    )


VALID = sorted(FIXTURES.glob("*/valid/*.xml"))
RECORD_SCHEMA = {
    "user": "user-record.xsd",
    "staff": "user-record.xsd",
    "leadsource": "leadsource-record.xsd",
}


@pytest.mark.parametrize("path", VALID, ids=lambda p: f"{p.parts[-3]}/{p.stem}")
def test_a_record_answer_is_valid_and_keeps_every_field(path: Path) -> None:
    kind = Kind(path.parts[-3])
    record = stored(kind, path.read_bytes())
    rendered = answers.record(record, "6f1c9a52-0b7e-4c57-9a53-2b1f0c4e8d11")
    schema(RECORD_SCHEMA[kind]).assertValid(etree.fromstring(rendered))
    # What the hub answers, minus the read-only fields, parses back to the same record.
    root = etree.fromstring(rendered)
    for name in ("createdBy", "createdDate", "modifiedBy", "modifiedDate"):
        for element in root.iter(name):
            element.getparent().remove(element)
    assert parse(kind, etree.tostring(root)).body == record.body
