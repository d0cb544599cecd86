"""What goes out on the wire, byte for byte, for one user with every field.

A change to a wire format shows in review as a change to `golden/`. To
accept an intended change: HUB_UPDATE_GOLDEN=1 pytest tests/adapters/test_golden.py
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import aiohttp

from adapters.base import ClubRef, OutboundUser
from adapters.fakes.connector_xml import FakeConnectorPartner
from adapters.fakes.generic_json import FakeGenericJson
from tests.adapters.conftest import json_adapter, xml_adapter

GOLDEN = Path(__file__).parent / "golden"
CLUB = ClubRef("C-456", "K-123")
USER = OutboundUser(
    hub_uuid=uuid.UUID("3f2a8d4e-1b6c-5a7d-9e0f-123456789abc"),
    partner_id="P-99",
    user_type="MEMBER",
    status="INACTIVE",
    firstname="Ada <&>",
    lastname="Lovelace-Byron",
    birthdate="1990-12-10",
    gender="F",
    address1="1234 Fake St",
    address2="Apartment 1a",
    city="Springfield",
    zipcode="12345",
    state="IL",
    country="US",
    mobile="555-0100",
    email="ada@example.com",
    home_phone="555-0101",
    work_phone="555-0102",
    company='Smith & Sons "Widgets" — Ünïcode',
    owner_id="S-17",
    lead_source_id="walk-in",
    lead_source_name="Walk-in",
    trial_start="2026-11-01",
    trial_end="2026-11-14",
    idempotency_key="3f2a8d4e-1b6c-5a7d-9e0f-123456789abc:crm:3",
)


def _same_as_golden(name: str, body: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("HUB_UPDATE_GOLDEN"):
        path.write_bytes(body)
    assert body == path.read_bytes(), f"{name} changed: review it, then HUB_UPDATE_GOLDEN=1"


async def test_generic_json_user(
    json_fake: FakeGenericJson, session: aiohttp.ClientSession
) -> None:
    await json_adapter(json_fake.url, session).save_user(CLUB, USER)
    [request] = json_fake.requests
    assert request.status == 201
    _same_as_golden("generic_json_user.json", request.body)


async def test_connector_xml_user(
    xml_fake: FakeConnectorPartner, session: aiohttp.ClientSession
) -> None:
    await xml_adapter(xml_fake.url, session).save_user(CLUB, USER)
    [request] = xml_fake.requests
    assert request.status == 200
    _same_as_golden("connector_xml_user.xml", request.body)


async def test_connector_xml_lead_source(
    xml_fake: FakeConnectorPartner, session: aiohttp.ClientSession
) -> None:
    await xml_adapter(xml_fake.url, session).create_lead_source(CLUB, "Walk-in & Radio")
    [request] = xml_fake.requests
    assert request.status == 200
    _same_as_golden("connector_xml_leadsource.xml", request.body)
