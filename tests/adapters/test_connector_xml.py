"""The connector_xml adapter against FakeConnectorPartner, over real HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest

from adapters.base import (
    AdapterConfigError,
    Capability,
    ClubRef,
    LeadSource,
    PermanentPartnerError,
    StaffMember,
)
from adapters.connector_xml import ConnectorXmlAdapter, lead_source_record_id
from adapters.fakes.connector_xml import FakeConnectorPartner
from hub.connector.documents import Kind
from hub.records import hub_uuid
from tests.adapters.conftest import (
    CLUB,
    CONNECTOR_ONLY,
    HUB_UUID,
    IDENTIFIER,
    TOKEN,
    config,
    outbound,
    xml_adapter,
)


@pytest.fixture
def adapter(xml_fake: FakeConnectorPartner, session: aiohttp.ClientSession) -> ConnectorXmlAdapter:
    return xml_adapter(xml_fake.url, session)


async def test_create_then_update_keeps_the_partners_uuid(
    adapter: ConnectorXmlAdapter, xml_fake: FakeConnectorPartner
) -> None:
    created = await adapter.save_user(CLUB, outbound())
    updated = await adapter.save_user(
        CLUB, outbound(partner_id=created.partner_id, firstname="Augusta")
    )
    expected = hub_uuid(IDENTIFIER, "C-1", "K-1", Kind.USER, str(HUB_UUID))
    assert updated.partner_id == created.partner_id == str(expected)
    assert xml_fake.creates[str(HUB_UUID)] == 1
    assert xml_fake.users[str(HUB_UUID)]["userInfo"]["firstname"] == "Augusta"
    save = xml_fake.requests[0]
    assert (save.method, save.path) == ("POST", "/connector/api/2011-11/user")
    assert save.headers["Authorization"] == f"Bearer {TOKEN}"
    assert save.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert "X-Partner-Id" not in save.headers
    assert xml_fake.requests[1].headers["X-Partner-Id"] == created.partner_id


async def test_a_second_save_without_the_partners_uuid_is_a_second_create(
    adapter: ConnectorXmlAdapter, xml_fake: FakeConnectorPartner
) -> None:
    # The Connector answers it as an update (same recordID), but the hub sent a create.
    first = await adapter.save_user(CLUB, outbound())
    assert (await adapter.save_user(CLUB, outbound())).partner_id == first.partner_id
    assert xml_fake.creates[str(HUB_UUID)] == 2
    with pytest.raises(PermanentPartnerError):  # an update of a UUID it never gave
        await adapter.save_user(CLUB, outbound(partner_id=str(uuid.uuid4())))
    assert xml_fake.create_calls == 2


async def test_values_are_escaped_and_arrive_unchanged(
    adapter: ConnectorXmlAdapter, xml_fake: FakeConnectorPartner
) -> None:
    user = outbound(
        firstname="Ada <&> \"'",
        company="Smith & Sons <Ltd> ]]>",
        address1="Straße 1 — ünïcödé",
        lead_source_name="Walk-in & Radio",
    )
    await adapter.save_user(ClubRef("C&1", "K<1>"), user)
    body = xml_fake.users[str(HUB_UUID)]
    assert body["userInfo"]["firstname"] == "Ada <&> \"'"
    assert body["userInfo"]["company"] == "Smith & Sons <Ltd> ]]>"
    assert body["userInfo"]["address1"] == "Straße 1 — ünïcödé"
    assert body["leadInfo"] == {"leadSource": "Walk-in & Radio"}


async def test_the_lead_source_id_wins_over_its_name(
    adapter: ConnectorXmlAdapter, xml_fake: FakeConnectorPartner
) -> None:
    user = outbound(
        lead_source_id="walk-in", lead_source_name="Walk-in", owner_id="S-3", trial_end="2026-12-01"
    )
    await adapter.save_user(CLUB, user)
    assert xml_fake.users[str(HUB_UUID)]["leadInfo"] == {
        "leadSource": "walk-in",
        "ownerID": "S-3",
        "trialEnd": "2026-12-01",
    }


async def test_text_xml_cannot_carry_is_permanent_and_not_sent(
    adapter: ConnectorXmlAdapter, xml_fake: FakeConnectorPartner
) -> None:
    with pytest.raises(PermanentPartnerError, match="cannot be sent as XML"):
        await adapter.save_user(CLUB, outbound(company="bell \x07"))
    assert xml_fake.requests == []


async def test_staff_are_listed_for_the_club(
    adapter: ConnectorXmlAdapter, xml_fake: FakeConnectorPartner
) -> None:
    sam = xml_fake.add_staff("C-1", "K-1", "sam@example.com", "Sam", "Staff")
    kim = xml_fake.add_staff("C-1", "K-1", "kim@example.com")
    xml_fake.add_staff("C-1", "K-2", "elsewhere@example.com", "El", "Sewhere")
    assert await adapter.list_staff(CLUB) == [
        StaffMember(sam, "sam@example.com", "Sam", "Staff"),
        StaffMember(kim, "kim@example.com"),
    ]
    assert xml_fake.requests[0].query == {
        "provider": IDENTIFIER,
        "client_id": "C-1",
        "club_id": "K-1",
    }


async def test_lead_sources_are_listed_and_created_by_slug(
    adapter: ConnectorXmlAdapter, xml_fake: FakeConnectorPartner
) -> None:
    facebook = xml_fake.add_lead_source("C-1", "K-1", "Facebook", "FACEBOOK")
    assert await adapter.list_lead_sources(CLUB) == [LeadSource(facebook, "Facebook")]
    created = await adapter.create_lead_source(CLUB, "Walk In!")
    assert created == LeadSource("walk-in", "Walk In!")
    assert await adapter.create_lead_source(CLUB, "Walk In!") == created
    assert await adapter.list_lead_sources(CLUB) == [LeadSource(facebook, "Facebook"), created]
    assert xml_fake.lead_sources[("C-1", "K-1")] == {"FACEBOOK": "Facebook", "walk-in": "Walk In!"}


async def test_an_error_answer_names_its_reason_and_message(
    adapter: ConnectorXmlAdapter, xml_fake: FakeConnectorPartner
) -> None:
    with pytest.raises(PermanentPartnerError) as caught:
        await adapter.save_user(CLUB, outbound(gender="X", birthdate="1990-02-30"))
    error = caught.value
    assert error.status == 400
    assert "answered 400: VALIDATION: userInfo/birthdate: must be a real date" in error.message
    assert "userInfo/gender: must be M or F" in error.message
    assert "(errorUUID " in error.message
    assert error.answer.startswith("<error><reason>VALIDATION</reason>")


async def test_an_identifier_the_partner_does_not_know_is_forbidden(
    xml_fake: FakeConnectorPartner, session: aiohttp.ClientSession
) -> None:
    adapter = xml_adapter(xml_fake.url, session, identifier="someone-else")
    with pytest.raises(PermanentPartnerError, match="403: FORBIDDEN"):
        await adapter.save_user(CLUB, outbound())
    with pytest.raises(PermanentPartnerError, match="403: FORBIDDEN"):
        await adapter.list_staff(CLUB)


@pytest.mark.parametrize(
    "answer",
    [
        '<!DOCTYPE r [<!ENTITY a "b">]><response><uuid>&a;</uuid></response>',
        "<response><uuid>  </uuid></response>",
        "<staffList/>",
        "<response><uuid>1",
        "",
    ],
)
async def test_a_save_answer_that_makes_no_sense_is_permanent(
    adapter: ConnectorXmlAdapter, xml_fake: FakeConnectorPartner, answer: str
) -> None:
    xml_fake.fail_next(1, status=200, body=answer)
    with pytest.raises(PermanentPartnerError) as caught:
        await adapter.save_user(CLUB, outbound())
    assert caught.value.answer == answer


async def test_a_listed_record_without_record_id_is_permanent(
    adapter: ConnectorXmlAdapter, xml_fake: FakeConnectorPartner
) -> None:
    xml_fake.fail_next(1, status=200, body="<leadSources><leadSource/></leadSources>")
    with pytest.raises(PermanentPartnerError, match="no providerInfo/recordID"):
        await adapter.list_lead_sources(CLUB)


@pytest.mark.parametrize("identifier", [None, "", "  ", 17])
def test_an_identifier_is_required(session: aiohttp.ClientSession, identifier: object) -> None:
    settings: dict[str, Any] = {} if identifier is None else {"identifier": identifier}
    with pytest.raises(AdapterConfigError, match=r"settings\.identifier"):
        ConnectorXmlAdapter(config("http://partner.invalid", CONNECTOR_ONLY, **settings), session)


def test_find_by_email_cannot_be_declared(session: aiohttp.ClientSession) -> None:
    # The Connector API looks staff up by recordID only.
    with pytest.raises(AdapterConfigError, match=r"cannot staff\.find_by_email"):
        ConnectorXmlAdapter(
            config("http://partner.invalid", frozenset(Capability), identifier=IDENTIFIER),
            session,
        )


@pytest.mark.parametrize(
    ("name", "record_id"),
    [
        ("Walk In!", "walk-in"),
        ("  Facebook  ", "facebook"),
        ("walk_in", "walk-in"),
        ("Café Ünï", "café-ünï"),
        ("--Radio 101.5 FM--", "radio-101-5-fm"),
    ],
)
def test_lead_source_record_ids_are_slugs(name: str, record_id: str) -> None:
    assert lead_source_record_id(name) == record_id


def test_lead_source_record_ids_stay_short_stable_and_distinct() -> None:
    long_a, long_b = "A" * 80 + " one", "A" * 80 + " two"
    ids = {lead_source_record_id(long_a), lead_source_record_id(long_b)}
    assert len(ids) == 2
    assert all(len(i) <= 64 for i in ids)
    assert lead_source_record_id(long_a) == lead_source_record_id(long_a.upper())
    symbols = lead_source_record_id("!!!")
    assert symbols.startswith("ls-")
    assert symbols != lead_source_record_id("???")


async def test_an_error_answered_with_200_is_permanent_and_says_why(
    adapter: ConnectorXmlAdapter, xml_fake: FakeConnectorPartner
) -> None:
    body = "<error><reason>DATABASE</reason><message>locked</message></error>"
    xml_fake.fail_next(1, status=200, body=body)
    with pytest.raises(PermanentPartnerError, match="not a <response> but DATABASE: locked"):
        await adapter.save_user(CLUB, outbound())
