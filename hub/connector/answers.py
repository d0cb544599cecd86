"""The XML the hub answers with: save receipts, errors, records and lists.

Field order follows the rule tables, so answers are stable for partners and
for the XSDs in `schemas/connector/`. Values are escaped here and nowhere else.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable
from xml.sax.saxutils import escape

from hub.connector import rules
from hub.connector.documents import SHAPES, Kind
from hub.records import StoredRecord

_READ_ONLY_SECTION = {Kind.USER: "userInfo", Kind.STAFF: "userInfo", Kind.LEADSOURCE: "leadInfo"}
_LIST_ROOT = {Kind.STAFF: "staffList", Kind.LEADSOURCE: "leadSources", Kind.USER: "users"}
# GET answers may show any user type; the save rules differ only in that.
_ANSWER_USER_INFO = rules.user_info("PROSPECT", "MEMBER", "STAFF")


def response(record_uuid: uuid.UUID) -> bytes:
    return f"<response><uuid>{record_uuid}</uuid></response>".encode()


def error(reason: str, error_uuid: uuid.UUID, message: str) -> bytes:
    return (
        f"<error><reason>{reason}</reason><errorUUID>{error_uuid}</errorUUID>"
        f"<message>{escape(message)}</message></error>"
    ).encode()


def record(stored: StoredRecord, identifier: str) -> bytes:
    """One record as its provider (whose `identifier` this is) sees it."""
    return _record(stored, identifier).encode()


def record_list(kind: Kind, records: Iterable[StoredRecord], identifier: str) -> bytes:
    root = _LIST_ROOT[kind]
    return f"<{root}>{''.join(_record(r, identifier) for r in records)}</{root}>".encode()


def _record(stored: StoredRecord, identifier: str) -> str:
    shape = SHAPES[stored.kind]
    parts = [
        f"<{shape.root}><providerInfo>",
        _element("identifier", identifier),
        _element("clientID", stored.client_id),
        _element("clubID", stored.club_id),
        _element("recordID", stored.record_id),
        "</providerInfo>",
    ]
    for name, (section, _) in shape.sections.items():
        if name == "providerInfo":
            continue
        fields = _ANSWER_USER_INFO.fields if name == "userInfo" else section.fields
        values = stored.body.get(name, {})
        inner = [_element(f, values[f]) for f in fields if f in values]
        if name == _READ_ONLY_SECTION[stored.kind]:
            inner += [
                _element("createdBy", stored.created_by),
                _element("createdDate", _timestamp(stored.created_at)),
                _element("modifiedBy", stored.modified_by),
                _element("modifiedDate", _timestamp(stored.modified_at)),
            ]
        if inner:
            parts += [f"<{name}>", *inner, f"</{name}>"]
    parts.append(f"</{shape.root}>")
    return "".join(parts)


def _element(name: str, value: str) -> str:
    return f"<{name}>{escape(value)}</{name}>"


def _timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
