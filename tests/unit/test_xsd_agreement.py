"""The XSDs of `schemas/connector/` and the hub's own checks give the same verdicts.

Every fixture `tests/fixtures/xml/<kind>/<verdict>/<rule>.xml` must be judged
`<verdict>` both by `schemas/connector/<kind>.xsd` and by
`hub.connector.documents.parse`; an invalid fixture's name says the rule it
breaks. The country enumeration of `common.xsd` must be `COUNTRIES`, and what
the hub answers (records, lists, receipts, errors) must fit the answer XSDs.
"""

from __future__ import annotations

import datetime
import uuid
from functools import cache
from pathlib import Path

import pytest
from lxml import etree

from hub.connector import answers
from hub.connector.countries import COUNTRIES
from hub.connector.documents import Document, Kind, parse
from hub.errors import InvalidDocument
from hub.records import StoredRecord

SCHEMAS = Path(__file__).parents[2] / "schemas" / "connector"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "xml"
KINDS = {"user": Kind.USER, "staff": Kind.STAFF, "leadsource": Kind.LEADSOURCE}
VERDICTS = ("valid", "invalid")
XS = {"xs": "http://www.w3.org/2001/XMLSchema"}
# The fixtures hold no DTD; this parser would not read one if they did.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def fixtures(verdict: str | None = None) -> list[Path]:
    pattern = f"*/{verdict}/*.xml" if verdict else "*/*/*.xml"
    return sorted(FIXTURES.glob(pattern))


def fixture_id(path: Path) -> str:
    return path.relative_to(FIXTURES).as_posix()


def kind_of(path: Path) -> str:
    return path.relative_to(FIXTURES).parts[0]


def expected_valid(path: Path) -> bool:
    verdict = path.relative_to(FIXTURES).parts[1]
    assert verdict in VERDICTS, f"{fixture_id(path)}: not under valid/ or invalid/"
    return verdict == "valid"


@cache
def schema(name: str) -> etree.XMLSchema:
    """`schemas/connector/<name>.xsd`, with the common.xsd it includes."""
    return etree.XMLSchema(etree.parse(str(SCHEMAS / f"{name}.xsd"), _PARSER))


def xsd_problems(name: str, xml: bytes) -> list[str]:
    """What `<name>.xsd` finds wrong with `xml` (empty: valid)."""
    checker = schema(name)
    if checker.validate(etree.fromstring(xml, _PARSER)):
        return []
    return str(checker.error_log).splitlines()


def hub_verdict(path: Path) -> tuple[bool, list[str]]:
    try:
        parse(KINDS[kind_of(path)], path.read_bytes())
    except InvalidDocument as exc:
        return False, exc.problems
    return True, []


# ------------------------------------------------------------ the fixtures


def test_every_kind_has_fixtures_of_both_verdicts() -> None:
    found = {(kind_of(p), p.relative_to(FIXTURES).parts[1]) for p in fixtures()}
    assert found == {(kind, verdict) for kind in KINDS for verdict in VERDICTS}


@pytest.mark.parametrize("path", fixtures(), ids=fixture_id)
def test_fixture_is_well_formed_without_a_dtd(path: Path) -> None:
    body = path.read_bytes()
    assert b"<!DOCTYPE" not in body
    assert b"<!ENTITY" not in body
    root = etree.fromstring(body, _PARSER)
    assert root.getroottree().docinfo.internalDTD is None


# ---------------------------------------------------------- the agreement


@pytest.mark.parametrize("path", fixtures(), ids=fixture_id)
def test_the_xsd_gives_the_fixtures_verdict(path: Path) -> None:
    problems = xsd_problems(kind_of(path), path.read_bytes())
    if expected_valid(path):
        assert problems == [], f"{kind_of(path)}.xsd refuses a valid fixture"
    else:
        assert problems, f"{kind_of(path)}.xsd accepts an invalid fixture"


@pytest.mark.parametrize("path", fixtures(), ids=fixture_id)
def test_the_hub_gives_the_fixtures_verdict(path: Path) -> None:
    valid, problems = hub_verdict(path)
    if expected_valid(path):
        assert valid, f"the hub refuses a valid fixture: {problems}"
    else:
        assert not valid, "the hub accepts an invalid fixture"
        assert problems, "the hub refuses without naming a problem"


def test_the_xsd_countries_are_the_hubs() -> None:
    common = etree.parse(str(SCHEMAS / "common.xsd"), _PARSER)
    codes = common.xpath(
        "//xs:simpleType[@name='Country']/xs:restriction/xs:enumeration/@value", namespaces=XS
    )
    assert isinstance(codes, list)
    values = [str(code) for code in codes]
    assert len(values) == len(set(values)), "a country code is listed twice in common.xsd"
    assert set(values) == COUNTRIES
    assert len(COUNTRIES) == 249


# ------------------------------------------------------------- the answers


def stored(document: Document) -> StoredRecord:
    created = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.UTC)
    return StoredRecord(
        uuid=uuid.uuid4(),
        kind=document.kind,
        provider="intouch",
        client="acme",
        club="downtown",
        client_id=document.client_id,
        club_id=document.club_id,
        record_id=document.record_id,
        body=document.body,
        version=2,
        created_by="intouch",
        created_at=created,
        modified_by="intouch",
        modified_at=created + datetime.timedelta(days=1),
    )


RECORD_SCHEMA = {"user": "user-record", "staff": "user-record", "leadsource": "leadsource-record"}
LIST_SCHEMA = {"staff": "staff-list", "leadsource": "lead-sources"}


@pytest.mark.parametrize("path", fixtures("valid"), ids=fixture_id)
def test_the_record_answer_fits_its_xsd(path: Path) -> None:
    document = parse(KINDS[kind_of(path)], path.read_bytes())
    record = answers.record(stored(document), document.identifier)
    assert xsd_problems(RECORD_SCHEMA[kind_of(path)], record) == [], record.decode()
    # Less its read-only fields, the answer is the saved document again: no field is lost.
    root = etree.fromstring(record)
    for name in ("createdBy", "createdDate", "modifiedBy", "modifiedDate"):
        for element in list(root.iter(name)):
            element.getparent().remove(element)
    assert parse(document.kind, etree.tostring(root)) == document


@pytest.mark.parametrize("kind", sorted(LIST_SCHEMA))
def test_the_list_answer_fits_its_xsd(kind: str) -> None:
    records = [
        stored(parse(KINDS[kind], path.read_bytes()))
        for path in fixtures("valid")
        if kind_of(path) == kind
    ]
    for listed in (records, []):
        answer = answers.record_list(KINDS[kind], listed, "6f1c9a52-0b7e-4c57-9a53-2b1f0c4e8d11")
        assert xsd_problems(LIST_SCHEMA[kind], answer) == [], answer.decode()


def test_the_save_receipt_fits_its_xsd() -> None:
    assert xsd_problems("response", answers.response(uuid.uuid4())) == []


@pytest.mark.parametrize(
    "reason",
    [
        "VALIDATION",
        "AUTHENTICATION",
        "FORBIDDEN",
        "NOT_FOUND",
        "TOO_LARGE",
        "UNSUPPORTED_MEDIA",
        "UNAVAILABLE",
        "DATABASE",
        "UNKNOWN",
    ],
)
def test_the_error_answer_fits_its_xsd(reason: str) -> None:
    message = "userInfo/firstname: at most 50 characters (got 51); <user> & 'quotes'"
    assert xsd_problems("error", answers.error(reason, uuid.uuid4(), message)) == []


def test_the_answer_xsds_refuse_what_the_hub_never_sends() -> None:
    receipt = b"<response><uuid>not-a-uuid</uuid></response>"
    assert xsd_problems("response", receipt)
    wrong_order = (
        b"<error><errorUUID>1b4e28ba-2fa1-11d2-883f-0016d3cca427</errorUUID>"
        b"<reason>VALIDATION</reason><message>m</message></error>"
    )
    assert xsd_problems("error", wrong_order)
    unknown_reason = (
        b"<error><reason>TEAPOT</reason><errorUUID>1b4e28ba-2fa1-11d2-883f-0016d3cca427"
        b"</errorUUID><message>m</message></error>"
    )
    assert xsd_problems("error", unknown_reason)
    saved = (FIXTURES / "user" / "valid" / "full-example.xml").read_bytes()
    assert xsd_problems("user-record", saved), "a record answer carries the read-only fields"
