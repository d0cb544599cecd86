"""The abc_datatrak adapter against FakeAbcDataTrak, over real HTTP.

The wire format of a save is kept in `golden/abc_datatrak_*.xml`; to accept
an intended change: HUB_UPDATE_GOLDEN=1 pytest tests/adapters/test_abc_datatrak.py
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.abc_datatrak import AbcDataTrakAdapter
from adapters.base import (
    AdapterConfigError,
    Capability,
    ClubRef,
    PermanentPartnerError,
    StaffMember,
    TransientPartnerError,
)
from adapters.fakes.abc_datatrak import FakeAbcDataTrak
from tests.adapters.conftest import TOKEN, config, outbound
from tests.adapters.test_golden import USER

APP_ID = "hub-app"
CLUB = ClubRef("unused-client", "1234")
ABC = frozenset({Capability.USER_SAVE, Capability.STAFF_LIST})
GOLDEN = Path(__file__).parent / "golden"


def abc(url: str, session: aiohttp.ClientSession, **settings: Any) -> AbcDataTrakAdapter:
    settings.setdefault("app_id", APP_ID)
    capabilities = settings.pop("capabilities", ABC)
    return AbcDataTrakAdapter(config(url, capabilities, **settings), session)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAbcDataTrak]:
    fake = FakeAbcDataTrak(APP_ID, TOKEN)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def adapter(fake: FakeAbcDataTrak, session: aiohttp.ClientSession) -> AbcDataTrakAdapter:
    return abc(fake.url, session)


def saves(fake: FakeAbcDataTrak) -> list[str]:
    return [r.path for r in fake.requests if r.method == "POST"]


# -- create and update ------------------------------------------------------------------------


async def test_create_then_update_is_an_update_at_abc(
    adapter: AbcDataTrakAdapter, fake: FakeAbcDataTrak
) -> None:
    created = await adapter.save_user(CLUB, outbound(city="Springfield"))
    assert created.notes == ()
    updated = await adapter.save_user(CLUB, outbound(partner_id=created.partner_id, city=None))
    assert updated == created
    assert fake.creates == {"ada@example.com": 1}
    assert saves(fake) == ["/ws/insertProspect/1234", "/ws/updateProspect/1234"]
    user = fake.users[created.partner_id]
    assert user["firstName"] == "Ada"
    assert "city" not in user  # updateProspect erases what is not sent
    assert user["beginDate"]  # ... but keeps beginDate


async def test_every_request_carries_the_app_id_and_key(
    adapter: AbcDataTrakAdapter, fake: FakeAbcDataTrak
) -> None:
    await adapter.save_user(ClubRef("x", "12/34 ?"), outbound(email=None))
    [request] = fake.requests
    assert request.path == "/ws/insertProspect/12/34 ?"
    assert request.headers["app_id"] == APP_ID
    assert request.headers["app_key"] == TOKEN
    assert request.headers["Content-Type"] == "application/xml; charset=utf-8"


async def test_a_repeated_create_updates_the_prospect_already_there(
    adapter: AbcDataTrakAdapter, fake: FakeAbcDataTrak
) -> None:
    first = await adapter.save_user(CLUB, outbound())
    again = await adapter.save_user(CLUB, outbound(email="ADA@example.com ", mobile="555"))
    assert again.partner_id == first.partner_id
    assert again.notes == (
        f"prospect {first.partner_id} already at ABC: updated, not created again",
    )
    assert fake.creates == {"ada@example.com": 1}
    assert fake.users[first.partner_id]["cellPhone"] == "555"
    lookup = fake.requests[0]
    assert (lookup.method, lookup.path) == ("GET", "/ws/getMemberList/1234")
    assert set(lookup.query) == {"updateStartTime"}


async def test_another_person_with_the_same_email_is_created(
    adapter: AbcDataTrakAdapter, fake: FakeAbcDataTrak
) -> None:
    ada = await adapter.save_user(CLUB, outbound())
    byron = await adapter.save_user(CLUB, outbound(firstname="Byron"))
    assert ada.partner_id != byron.partner_id
    assert fake.creates == {"ada@example.com": 2}


async def test_no_email_no_lookup(adapter: AbcDataTrakAdapter, fake: FakeAbcDataTrak) -> None:
    await adapter.save_user(CLUB, outbound(email=None))
    assert [r.method for r in fake.requests] == ["POST"]


async def test_a_member_is_never_sent(adapter: AbcDataTrakAdapter, fake: FakeAbcDataTrak) -> None:
    with pytest.raises(PermanentPartnerError, match="prospects only, not a MEMBER"):
        await adapter.save_user(CLUB, outbound(user_type="MEMBER"))
    assert fake.requests == []


# -- the quirk: DataTrak's field limits -----------------------------------------------------


async def test_values_over_the_limits_are_truncated_with_a_note(
    adapter: AbcDataTrakAdapter, fake: FakeAbcDataTrak
) -> None:
    result = await adapter.save_user(
        CLUB,
        outbound(
            firstname="Bartholomew-Alexander!",  # 22
            lastname="Featherstonehaugh-Smythe",  # 24
            address1="1234 Long Boulevard of Broken Dreams",
            address2="Apartment 1a",
            city="Rancho Santa Margarita",
            zipcode="12345-67890",
            email="a.very.long.address.that.goes.on.and.on@subdomain.example.com",
        ),
    )
    assert result.notes == (
        "firstName truncated from 22 to 15 characters",
        "lastName truncated from 24 to 19 characters",
        "street truncated from 50 to 40 characters",
        "city truncated from 22 to 17 characters",
        "zip truncated from 11 to 10 characters",
        "email truncated from 61 to 60 characters",
    )
    user = fake.users[result.partner_id]
    assert user["firstName"] == "Bartholomew-Ale"
    assert user["lastName"] == "Featherstonehaugh-S"
    assert user["street"] == "1234 Long Boulevard of Broken Dreams, Ap"
    assert user["city"] == "Rancho Santa Marg"
    assert user["zip"] == "12345-6789"
    assert len(user["email"]) == 60


async def test_the_partner_refuses_a_value_over_its_limit(
    fake: FakeAbcDataTrak, session: aiohttp.ClientSession
) -> None:
    # The fake is DataTrak's witness: an adapter that forgot to truncate would fail here.
    body = b"""<insertProspect><clubNumber>1234</clubNumber><personal>
<firstName>Bartholomew-Alexander</firstName><lastName>L</lastName><gender>male</gender>
</personal><nickname>Bart</nickname></insertProspect>"""
    headers = {"app_id": APP_ID, "app_key": TOKEN, "Content-Type": "application/xml"}
    async with session.post(
        f"{fake.url}/insertProspect/1234", data=body, headers=headers
    ) as response:
        assert response.status == 400
        text = await response.text()
    assert "<response>error</response>" in text
    assert "firstName: at most 15 characters, not 21" in text
    assert "nickname: unknown element" in text
    assert fake.users == {}


async def test_what_datatrak_has_no_field_for_is_noted(
    adapter: AbcDataTrakAdapter, fake: FakeAbcDataTrak
) -> None:
    result = await adapter.save_user(
        CLUB,
        outbound(
            status="INACTIVE",
            state="Illinois",
            country="US",
            company="Acme",
            trial_start="2026-11-01",
            lead_source_name="Walk-in",
            gender="F",
            birthdate="1990-12-10",
        ),
    )
    assert result.notes == (
        "state 'Illinois' not sent: DataTrak takes a two-letter state code",
        "country not sent: DataTrak's prospect has no such field",
        "company not sent: DataTrak's prospect has no such field",
        "trialStart not sent: DataTrak's prospect has no such field",
        "leadSource not sent: DataTrak's prospect has no such field",
        "userStatus INACTIVE not sent: DataTrak's prospect has no status",
    )
    user = fake.users[result.partner_id]
    assert (user["gender"], user["dateofBirth"]) == ("female", "1990-12-10")
    assert "state" not in user


# -- owner and staff --------------------------------------------------------------------------


async def test_the_owner_is_the_salesperson(
    adapter: AbcDataTrakAdapter, fake: FakeAbcDataTrak
) -> None:
    sam = fake.add_staff("1234", "sam@example.com", "Sam", "Staff")
    with_owner = await adapter.save_user(CLUB, outbound(owner_id=sam))
    assert fake.users[with_owner.partner_id]["salesPersonId"] == sam
    without = await adapter.save_user(CLUB, outbound(email="kim@example.com"))
    assert "salesPersonId" not in fake.users[without.partner_id]


async def test_an_owner_that_is_no_employee_is_refused(
    adapter: AbcDataTrakAdapter, fake: FakeAbcDataTrak
) -> None:
    fake.add_staff("9999", "sam@example.com")
    with pytest.raises(PermanentPartnerError) as caught:
        await adapter.save_user(CLUB, outbound(owner_id="0000ABC0-0000-0000-0000-000000000001"))
    assert caught.value.status == 400
    assert "error: salesPersonId: '0000ABC0-0000-0000-0000-000000000001' is no employee" in str(
        caught.value
    )
    assert "<response>error</response>" in caught.value.answer


async def test_active_employees_of_the_club_are_listed(
    adapter: AbcDataTrakAdapter, fake: FakeAbcDataTrak
) -> None:
    sam = fake.add_staff("1234", "Sam@Example.com", "Sam", "Staff")
    kim = fake.add_staff("1234", "")
    fake.add_staff("1234", "gone@example.com", active=False)
    fake.add_staff("5678", "elsewhere@example.com")
    assert await adapter.list_staff(CLUB) == [
        StaffMember(sam, "Sam@Example.com", "Sam", "Staff"),
        StaffMember(kim, ""),
    ]
    assert fake.requests[-1].query == {"employeeStatus": "active"}


def test_no_lead_sources_and_no_staff_search(session: aiohttp.ClientSession) -> None:
    assert AbcDataTrakAdapter.supported == ABC
    for capability in (Capability.LEADSOURCE_LIST, Capability.STAFF_FIND_BY_EMAIL):
        with pytest.raises(AdapterConfigError, match=f"cannot {capability}"):
            abc("http://abc.invalid/ws", session, capabilities=ABC | {capability})


async def test_lead_source_calls_are_refused(adapter: AbcDataTrakAdapter) -> None:
    with pytest.raises(PermanentPartnerError, match=r"leadsource\.list is not supported"):
        await adapter.list_lead_sources(CLUB)


# -- subscription and settings ----------------------------------------------------------------


def test_a_subscription_with_members_is_refused(adapter: AbcDataTrakAdapter) -> None:
    adapter.check_subscription(frozenset({"PROSPECT"}))
    with pytest.raises(AdapterConfigError) as caught:
        adapter.check_subscription(frozenset({"PROSPECT", "MEMBER", "FORMER_MEMBER"}))
    assert str(caught.value) == (
        "provider 'crm': ABC DataTrak (adapter 'abc_datatrak') takes prospects only "
        "and cannot receive FORMER_MEMBER, MEMBER"
    )
    with pytest.raises(AdapterConfigError, match=r"cannot receive FORMER_MEMBER$"):
        adapter.check_subscription(frozenset({"FORMER_MEMBER"}))


@pytest.mark.parametrize(
    ("settings", "env", "message"),
    [
        ({"app_id": ""}, None, r"settings\.app_id \(ABC's Application ID\) is not given"),
        ({"app_id": 7}, None, r"settings\.app_id"),
        ({"key_env": ""}, None, r"settings\.key_env is not given"),
        ({}, {}, r"PARTNER_KEY \(settings\.key_env\) is not set"),
        ({"timeout": 0}, None, r"settings\.timeout must be above 0"),
    ],
)
def test_settings_it_cannot_use_are_refused(
    session: aiohttp.ClientSession,
    settings: dict[str, Any],
    env: dict[str, str] | None,
    message: str,
) -> None:
    with pytest.raises(AdapterConfigError, match=message):
        abc("http://abc.invalid/ws", session, env=env, **settings)


def test_a_url_that_is_not_http_is_refused(session: aiohttp.ClientSession) -> None:
    with pytest.raises(AdapterConfigError, match="url must be http"):
        abc("ftp://abc.example/ws", session)


# -- ABC's error answers ----------------------------------------------------------------------


async def test_a_wrong_key_is_401_permanent(
    fake: FakeAbcDataTrak, session: aiohttp.ClientSession
) -> None:
    adapter = abc(fake.url, session, env={"PARTNER_KEY": "wrong"})
    with pytest.raises(PermanentPartnerError) as caught:
        await adapter.save_user(CLUB, outbound())
    assert caught.value.status == 401
    assert "<response>error</response>" in caught.value.answer


async def test_a_club_not_granted_is_401_and_an_operation_not_granted_403(
    fake: FakeAbcDataTrak, adapter: AbcDataTrakAdapter
) -> None:
    fake.clubs = {"5678"}
    with pytest.raises(PermanentPartnerError, match="401: error: 401 Authorization Required"):
        await adapter.list_staff(CLUB)
    fake.clubs = None
    fake.denied = {"insertProspect"}
    with pytest.raises(PermanentPartnerError) as caught:
        await adapter.save_user(CLUB, outbound(email=None))
    assert caught.value.status == 403
    assert "insertProspect is not granted" in caught.value.message


async def test_an_update_of_a_prospect_who_joined_is_refused(
    fake: FakeAbcDataTrak, adapter: AbcDataTrakAdapter
) -> None:
    created = await adapter.save_user(CLUB, outbound())
    fake.convert(created.partner_id)
    with pytest.raises(PermanentPartnerError, match="is a member, not a prospect"):
        await adapter.save_user(CLUB, outbound(partner_id=created.partner_id))


@pytest.mark.parametrize(
    ("status", "retry_after"), [(500, None), (503, 7.0), (429, 1.5), (408, None)]
)
async def test_transient_answers(
    fake: FakeAbcDataTrak, adapter: AbcDataTrakAdapter, status: int, retry_after: float | None
) -> None:
    fake.fail_next(1, status=status, retry_after=retry_after)
    with pytest.raises(TransientPartnerError) as caught:
        await adapter.save_user(CLUB, outbound())
    assert (caught.value.status, caught.value.retry_after) == (status, retry_after)
    assert "error: failing on purpose (id " in caught.value.message
    assert fake.users == {}


async def test_a_partner_that_is_down_then_works(
    fake: FakeAbcDataTrak, adapter: AbcDataTrakAdapter
) -> None:
    fake.down = True
    with pytest.raises(TransientPartnerError, match="503"):
        await adapter.list_staff(CLUB)
    fake.down = False
    assert await adapter.list_staff(CLUB) == []


async def test_a_slow_answer_is_a_transient_timeout(
    fake: FakeAbcDataTrak, session: aiohttp.ClientSession
) -> None:
    fake.delay = 0.5
    adapter = abc(fake.url, session, timeout=0.1)
    with pytest.raises(TransientPartnerError, match=r"no answer within 0\.1 s"):
        await adapter.save_user(CLUB, outbound())


async def test_a_refused_connection_is_transient(
    fake: FakeAbcDataTrak, session: aiohttp.ClientSession
) -> None:
    url = fake.url
    await fake.stop()
    with pytest.raises(TransientPartnerError):
        await abc(url, session).list_staff(CLUB)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("not xml", "not usable XML"),
        ("<insertProspect/>", "not a success: no <status>"),
        (
            "<insertProspect><status><response>error</response>"
            '<message id="7">firstName: is required</message></status></insertProspect>',
            "not a success: error: firstName: is required (id 7)",
        ),
        (
            "<insertProspect><status><response>success</response></status></insertProspect>",
            "no result/memberId",
        ),
    ],
)
async def test_a_2xx_that_is_no_success_is_permanent(
    fake: FakeAbcDataTrak, adapter: AbcDataTrakAdapter, answer: str, problem: str
) -> None:
    fake.fail_next(1, status=200, body=answer)
    with pytest.raises(PermanentPartnerError, match=re.escape(problem)) as caught:
        await adapter.save_user(CLUB, outbound(email=None))
    assert caught.value.answer == answer
    assert caught.value.status == 200


async def test_an_employee_without_an_id_is_permanent(
    fake: FakeAbcDataTrak, adapter: AbcDataTrakAdapter
) -> None:
    fake.fail_next(
        1,
        status=200,
        body="<getEmployeeList><status><response>success</response></status>"
        "<employees><employee><contact><email>a@b.c</email></contact></employee>"
        "</employees></getEmployeeList>",
    )
    with pytest.raises(PermanentPartnerError, match="<employee> has no <employeeId>"):
        await adapter.list_staff(CLUB)


async def test_text_xml_cannot_carry_is_permanent(
    adapter: AbcDataTrakAdapter, fake: FakeAbcDataTrak
) -> None:
    with pytest.raises(PermanentPartnerError, match="cannot be sent as XML"):
        await adapter.save_user(CLUB, outbound(email=None, lastname="Love\x00lace"))
    assert fake.requests == []


# -- the wire format, byte for byte -----------------------------------------------------------


def _same_as_golden(name: str, body: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("HUB_UPDATE_GOLDEN"):
        path.write_bytes(body)
    assert body == path.read_bytes(), f"{name} changed: review it, then HUB_UPDATE_GOLDEN=1"


async def test_golden_insert_and_update(fake: FakeAbcDataTrak, adapter: AbcDataTrakAdapter) -> None:
    owner = fake.add_staff("1234", "sam@example.com")
    prospect = replace(USER, user_type="PROSPECT", status="ACTIVE", owner_id=owner)
    created = await adapter.save_user(CLUB, replace(prospect, partner_id=None))
    await adapter.save_user(CLUB, replace(prospect, partner_id=created.partner_id))
    insert, update = (r for r in fake.requests if r.method == "POST")
    assert (insert.status, update.status) == (200, 200)
    _same_as_golden("abc_datatrak_insert.xml", insert.body)
    _same_as_golden("abc_datatrak_update.xml", update.body)


# -- the fake as a process (the demo's way) ---------------------------------------------------


async def test_the_fake_as_a_process(session: aiohttp.ClientSession) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.fakes.abc_datatrak",
        "--port",
        "0",
        "--app-id",
        APP_ID,
        "--key-env",
        "FAKE_ABC_KEY",
        "--club",
        "1234",
        "--staff",
        "1234:sam@example.com",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "FAKE_ABC_KEY": TOKEN},
    )
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        assert " listening on http://127.0.0.1:" in line, line
        url = line.rsplit(" ", 1)[1].strip()
        assert url.endswith("/ws")
        adapter = abc(url, session)
        assert [s.email for s in await adapter.list_staff(CLUB)] == ["sam@example.com"]
        with pytest.raises(PermanentPartnerError, match="401"):
            await adapter.list_staff(ClubRef("x", "5678"))
    finally:
        process.terminate()
        await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0
