"""The clubready adapter against FakeClubReady, over real HTTP.

Also the golden files of what it sends: one user with every field (as in
test_golden.py), created and then updated. To accept an intended change:
HUB_UPDATE_GOLDEN=1 pytest tests/adapters/test_clubready.py
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.base import (
    AdapterConfigError,
    Capability,
    ClubRef,
    LeadSource,
    OutboundUser,
    PartnerConfig,
    PermanentPartnerError,
    StaffMember,
    TransientPartnerError,
)
from adapters.clubready import ClubReadyAdapter, is_transient_message
from adapters.fakes.clubready import FakeClubReady
from tests.adapters import test_golden
from tests.adapters.conftest import HUB_UUID, TOKEN, outbound

GOLDEN = Path(__file__).parent / "golden"
STORE = "1234"
CLUB = ClubRef("77", STORE)
ALL = frozenset({Capability.USER_SAVE, Capability.STAFF_LIST, Capability.LEADSOURCE_LIST})


def config(url: str, env: dict[str, str] | None = None, **settings: Any) -> PartnerConfig:
    return PartnerConfig(
        name="cr",
        url=url,
        capabilities=settings.pop("capabilities", ALL),
        settings={"key_env": "CLUBREADY_KEY", "timeout": 2, **settings},
        env={"CLUBREADY_KEY": TOKEN} if env is None else env,
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeClubReady]:
    fake = FakeClubReady(TOKEN)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def adapter(fake: FakeClubReady, session: aiohttp.ClientSession) -> ClubReadyAdapter:
    return ClubReadyAdapter(config(fake.url), session)


def saves(fake: FakeClubReady) -> list[tuple[str, str]]:
    """(method, path) of the requests that wrote, in order."""
    return [(r.method, r.path) for r in fake.requests if r.method in ("POST", "PUT")]


# -- create and update -------------------------------------------------------------------------


async def test_create_then_update_keeps_the_user_id(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    created = await adapter.save_user(CLUB, outbound(home_phone="555-0101"))
    updated = await adapter.save_user(
        CLUB, outbound(partner_id=created.partner_id, firstname="Augusta", home_phone="555-0199")
    )
    assert updated.partner_id == created.partner_id == fake.partner_ids[str(HUB_UUID)]
    assert fake.creates[str(HUB_UUID)] == 1
    user = fake.users[str(HUB_UUID)]
    assert (user["FirstName"], user["HomePhone"], user["Phone"]) == (
        "Augusta",
        "555-0199",
        "555-0101",
    )
    user_id = created.partner_id
    assert saves(fake) == [
        ("POST", "/api/current/users/prospect"),
        ("PUT", f"/api/current/users/{user_id}"),
    ]
    assert created.notes == updated.notes == ()


async def test_the_create_carries_the_documented_fields_only(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    await adapter.save_user(CLUB, outbound(mobile="555-0100", gender="F"))
    [find, create] = fake.requests
    assert (find.method, find.path) == ("GET", "/api/current/users/find")
    assert find.query == {"ApiKey": TOKEN, "StoreId": STORE, "Email": "ada@example.com"}
    assert create.query == {"ApiKey": TOKEN, "StoreId": STORE}
    assert create.headers["Content-Type"] == "application/json"
    assert create.json == {
        "FirstName": "Ada",
        "LastName": "Lovelace",
        "Email": "ada@example.com",
        "Gender": "F",
        "CellPhone": "555-0100",
        "SendEmail": False,
        "ExternalId": str(HUB_UUID),
    }


async def test_every_call_carries_the_key_and_the_store(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    await adapter.save_user(CLUB, outbound())
    await adapter.list_staff(CLUB)
    await adapter.list_lead_sources(CLUB)
    assert len(fake.requests) == 4
    assert all(r.query["ApiKey"] == TOKEN and r.query["StoreId"] == STORE for r in fake.requests)


async def test_owner_and_referral_type_go_as_integers(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    sam = fake.add_staff(STORE, "sam@example.com")
    walk_in = fake.add_referral_type(STORE, "Walk-in")
    result = await adapter.save_user(
        CLUB, outbound(owner_id=str(sam), lead_source_id=str(walk_in), lead_source_name="Walk-in")
    )
    user = fake.users[str(HUB_UUID)]
    assert (user["AssignToId"], user["ReferralTypeId"]) == (sam, walk_in)
    assert result.notes == ()


async def test_without_owner_or_referral_type_neither_is_sent(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    await adapter.save_user(CLUB, outbound())
    assert "AssignToId" not in fake.users[str(HUB_UUID)]
    assert "ReferralTypeId" not in fake.users[str(HUB_UUID)]


async def test_an_id_that_is_no_clubready_id_is_left_out_and_noted(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    result = await adapter.save_user(CLUB, outbound(owner_id="S-17"))
    assert "AssignToId" not in fake.users[str(HUB_UUID)]
    assert result.notes == ("AssignToId not sent: 'S-17' is not a ClubReady ID",)


async def test_fields_clubready_has_no_place_for_are_noted(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    user = outbound(
        status="INACTIVE",
        address2="Apartment 1a",
        country="US",
        company="Acme",
        trial_start="2026-11-01",
        trial_end="2026-11-14",
    )
    created = await adapter.save_user(CLUB, user)
    assert created.notes == (
        "address2 not sent: ClubReady's prospect has no such field",
        "country not sent: ClubReady's prospect has no such field",
        "company not sent: ClubReady's prospect has no such field",
        "trialStart not sent: ClubReady's prospect has no such field",
        "trialEnd not sent: ClubReady's prospect has no such field",
        "userStatus INACTIVE not sent: ClubReady's prospect has no status",
    )
    sam = fake.add_staff(STORE, "sam@example.com")
    updated = await adapter.save_user(
        CLUB,
        outbound(
            partner_id=created.partner_id,
            work_phone="555-0102",
            owner_id=str(sam),
            lead_source_id="9",
        ),
    )
    assert updated.notes == (
        "workPhone not sent: ClubReady's user update has no WorkPhone",
        "ownerID not sent: ClubReady's user update has no AssignToId",
        "leadSource not sent: ClubReady's user update has no ReferralTypeId",
    )
    assert "WorkPhone" not in fake.requests[-1].json


# -- no duplicates -----------------------------------------------------------------------------


async def test_a_repeated_create_whose_answer_was_lost_is_an_update(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    first = await adapter.save_user(CLUB, outbound())
    again = await adapter.save_user(CLUB, outbound(firstname="Augusta"))  # no partner_id
    assert again.partner_id == first.partner_id
    assert fake.creates[str(HUB_UUID)] == 1
    assert fake.users[str(HUB_UUID)]["FirstName"] == "Augusta"
    assert again.notes == (f"UserId {first.partner_id} found by email: updated, not created again",)


async def test_a_person_the_club_already_has_is_updated_not_duplicated(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    existing = fake.add_user(STORE, "ADA@example.com ")
    fake.add_user("other store", "ada@example.com")
    result = await adapter.save_user(CLUB, outbound(firstname="Augusta"))
    assert result.partner_id == str(existing)
    assert fake.users[str(existing)]["FirstName"] == "Augusta"
    assert sum(fake.creates.values()) == 0


async def test_two_people_with_the_email_and_none_ours_is_permanent(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    fake.add_user(STORE, "ada@example.com")
    fake.add_user(STORE, "ada@example.com", first_name="Augusta")
    with pytest.raises(PermanentPartnerError, match="2 users of store 1234 have this email"):
        await adapter.save_user(CLUB, outbound())
    assert saves(fake) == []


async def test_of_two_people_with_the_email_ours_is_taken(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    fake.add_user(STORE, "ada@example.com")
    ours = fake.add_user(STORE, "ada@example.com", ExternalId=str(HUB_UUID))
    assert (await adapter.save_user(CLUB, outbound())).partner_id == str(ours)


# -- without an email --------------------------------------------------------------------------


@pytest.mark.parametrize("email", [None, "", "   "])
async def test_a_create_without_an_email_is_permanent_before_any_call(
    adapter: ClubReadyAdapter, fake: FakeClubReady, email: str | None
) -> None:
    with pytest.raises(PermanentPartnerError) as caught:
        await adapter.save_user(CLUB, outbound(email=email))
    assert str(caught.value) == (
        "cr: ClubReady needs an email to create a prospect; the record has none"
    )
    assert caught.value.status is None
    assert fake.requests == []


async def test_an_update_without_an_email_goes_out_and_keeps_clubreadys_email(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    created = await adapter.save_user(CLUB, outbound())
    updated = await adapter.save_user(
        CLUB, outbound(partner_id=created.partner_id, email=None, firstname="Augusta")
    )
    assert updated.partner_id == created.partner_id
    update = fake.requests[-1]
    assert (update.method, update.path) == ("PUT", f"/api/current/users/{created.partner_id}")
    assert "Email" not in update.json
    user = fake.users[str(HUB_UUID)]
    assert (user["FirstName"], user["Email"]) == ("Augusta", "ada@example.com")
    assert fake.creates[str(HUB_UUID)] == 1


@pytest.mark.parametrize("email", [None, " "])
async def test_the_fake_refuses_a_create_without_an_email_as_clubready_does(
    fake: FakeClubReady, session: aiohttp.ClientSession, email: str | None
) -> None:
    url = f"{fake.url}/users/prospect?ApiKey={TOKEN}&StoreId={STORE}"
    body: dict[str, Any] = {"FirstName": "Ada", "LastName": "L", "SendEmail": False}
    if email is not None:
        body["Email"] = email
    async with session.post(url, json=body) as response:
        assert response.status == 200
        assert await response.json() == {"Success": False, "Message": "Email is required"}
    assert fake.users == {}


# -- the quirk: 200 with "Success": false ------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        "Invalid ReferralTypeId 4 for this store",
        "FirstName is required",
        "A user with this email already exists at this store",
        "Invalid StoreId 1234",
        "",
    ],
)
async def test_success_false_for_a_validation_is_permanent(
    adapter: ClubReadyAdapter, fake: FakeClubReady, message: str
) -> None:
    fake.refuse_saves(1, message)
    with pytest.raises(PermanentPartnerError) as caught:
        await adapter.save_user(CLUB, outbound())
    assert caught.value.status == 200
    assert f"POST /users/prospect refused (Success false): {message or 'no message'}" in str(
        caught.value
    )
    assert caught.value.answer == f'{{"Success":false,"Message":"{message}"}}'
    assert fake.users == {}


@pytest.mark.parametrize(
    "message",
    [
        "Please try again later",
        "Request timeout",
        "The server is busy",
        "Service temporarily unavailable",
        "Transaction was deadlocked; rerun it",
    ],
)
async def test_success_false_that_says_later_is_transient(
    adapter: ClubReadyAdapter, fake: FakeClubReady, message: str
) -> None:
    fake.refuse_saves(1, message)
    with pytest.raises(TransientPartnerError) as caught:
        await adapter.save_user(CLUB, outbound())
    assert caught.value.status == 200
    assert message in caught.value.answer
    # The retry finds nobody (the refused create made none) and creates once.
    await adapter.save_user(CLUB, outbound())
    assert fake.creates[str(HUB_UUID)] == 1


async def test_an_update_refused_is_classified_too(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    created = await adapter.save_user(CLUB, outbound())
    with pytest.raises(PermanentPartnerError, match="User 999 not found at this store"):
        await adapter.save_user(CLUB, outbound(partner_id="999"))
    fake.refuse_saves(1, "Database busy, try again")
    with pytest.raises(TransientPartnerError, match=r"PUT /users/\d+ refused"):
        await adapter.save_user(CLUB, outbound(partner_id=created.partner_id))


async def test_the_fake_refuses_invalid_fields_with_success_false(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    for user, message in [
        (outbound(gender="X"), "Invalid Gender"),
        (outbound(birthdate="10/12/1990"), "Invalid DateOfBirth"),
        (outbound(lead_source_id="4"), "Invalid ReferralTypeId 4"),
        (outbound(owner_id="5"), "Invalid AssignToId 5"),
    ]:
        with pytest.raises(PermanentPartnerError, match=message):
            await adapter.save_user(CLUB, user)
    assert fake.users == {}


def test_messages_are_classified_by_their_words() -> None:
    assert is_transient_message("Please TRY AGAIN in a minute")
    assert is_transient_message("Operation timed out")
    assert not is_transient_message("Email is invalid")
    assert not is_transient_message("Duplicate prospect")
    assert not is_transient_message("")


async def test_success_false_on_a_list_is_classified(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    fake.stores = {"9999"}
    with pytest.raises(PermanentPartnerError, match="Invalid StoreId 1234"):
        await adapter.list_staff(CLUB)
    fake.fail_next(1, status=200, body='{"Success": false, "Message": "System busy"}')
    with pytest.raises(TransientPartnerError, match="System busy"):
        await adapter.list_lead_sources(ClubRef("77", "9999"))


# -- HTTP errors -------------------------------------------------------------------------------


async def test_a_wrong_api_key_is_401_and_permanent(
    fake: FakeClubReady, session: aiohttp.ClientSession
) -> None:
    adapter = ClubReadyAdapter(config(fake.url, env={"CLUBREADY_KEY": "wrong-key"}), session)
    with pytest.raises(PermanentPartnerError) as caught:
        await adapter.save_user(CLUB, outbound())
    assert caught.value.status == 401
    assert "GET /users/find answered 401: Access denied: invalid ApiKey" in str(caught.value)
    assert "wrong-key" not in str(caught.value)
    assert "wrong-key" not in caught.value.answer


async def test_500_is_transient_and_a_429_keeps_its_retry_after(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    fake.fail_next(1, status=500)
    with pytest.raises(TransientPartnerError, match="answered 500: failing on purpose") as caught:
        await adapter.save_user(CLUB, outbound())
    assert caught.value.answer == '{"Success":false,"Message":"failing on purpose"}'
    fake.fail_next(1, status=429, retry_after=7)
    with pytest.raises(TransientPartnerError) as limited:
        await adapter.list_staff(CLUB)
    assert limited.value.retry_after == 7


async def test_a_servicestack_error_shape_is_read_too(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    body = '{"ResponseStatus": {"ErrorCode": "SerializationException", "Message": "bad StoreId"}}'
    fake.fail_next(1, status=400, body=body)
    with pytest.raises(PermanentPartnerError, match="answered 400: bad StoreId"):
        await adapter.list_staff(CLUB)


async def test_no_answer_in_time_is_transient(
    fake: FakeClubReady, session: aiohttp.ClientSession
) -> None:
    fake.delay = 0.5
    adapter = ClubReadyAdapter(config(fake.url, timeout=0.1), session)
    started = time.monotonic()
    with pytest.raises(TransientPartnerError, match=r"no answer within 0\.1 s"):
        await adapter.list_staff(CLUB)
    assert time.monotonic() - started < 0.45


async def test_a_create_answered_too_late_is_found_and_updated_on_the_retry(
    fake: FakeClubReady, session: aiohttp.ClientSession
) -> None:
    adapter = ClubReadyAdapter(config(fake.url, timeout=0.2), session)
    fake.answer_late(0.5)  # the prospect is stored, the answer comes after the timeout
    with pytest.raises(TransientPartnerError, match=r"no answer within 0\.2 s"):
        await adapter.save_user(CLUB, outbound())
    assert fake.creates == {str(HUB_UUID): 1}
    saved = await adapter.save_user(CLUB, outbound())  # the hub's retry: no UserId known
    assert saved.partner_id == fake.partner_ids[str(HUB_UUID)]
    assert fake.creates == {str(HUB_UUID): 1}
    assert ("PUT", f"/api/current/users/{saved.partner_id}") in saves(fake)


async def test_a_second_create_is_counted_though_the_fake_refuses_it(
    adapter: ClubReadyAdapter, fake: FakeClubReady, session: aiohttp.ClientSession
) -> None:
    await adapter.save_user(CLUB, outbound())
    url = f"{fake.url}/users/prospect?ApiKey={TOKEN}&StoreId={STORE}"
    body = {"FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@example.com"}
    async with session.post(url, json={**body, "SendEmail": False}) as response:
        answer = await response.json()
    assert answer["Success"] is False  # the email is taken at the store
    assert fake.creates == {str(HUB_UUID): 1, "ada@example.com": 1}
    assert fake.create_calls == 2


async def test_a_refused_connection_is_transient_and_names_no_key(
    fake: FakeClubReady, session: aiohttp.ClientSession
) -> None:
    adapter = ClubReadyAdapter(config(fake.url), session)
    await fake.stop()
    with pytest.raises(TransientPartnerError, match="GET /staff: ") as caught:
        await adapter.list_staff(CLUB)
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("not json", "not JSON"),
        ('{"Success": true}', "UserId is missing"),
        ('{"Success": true, "UserId": 0}', "UserId is missing"),
        ('{"UserId": 5}', 'no "Success": true'),
        ('{"UserId": 5, "Success": "yes"}', 'no "Success": true'),
        ("[]", "not a JSON object"),
    ],
)
async def test_a_create_answer_that_makes_no_sense_is_permanent(
    adapter: ClubReadyAdapter, fake: FakeClubReady, answer: str, problem: str
) -> None:
    fake.fail_next(1, status=200, body="[]")  # the look-up: nobody
    fake.fail_next(1, status=200, body=answer)
    with pytest.raises(PermanentPartnerError, match=problem) as caught:
        await adapter.save_user(CLUB, outbound())
    assert caught.value.answer == answer


@pytest.mark.parametrize(
    "answer",
    ['{"UserId": 5}', '[{"Email": "a@example.com"}]', '[{"UserId": 5, "Email": 7}]', "[1]"],
)
async def test_a_staff_list_that_makes_no_sense_is_permanent(
    adapter: ClubReadyAdapter, fake: FakeClubReady, answer: str
) -> None:
    fake.fail_next(1, status=200, body=answer)
    with pytest.raises(PermanentPartnerError, match="GET /staff"):
        await adapter.list_staff(CLUB)


# -- staff and referral types ------------------------------------------------------------------


async def test_staff_are_the_stores_employees(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    sam = fake.add_staff(STORE, "Sam@Example.com", "Sam", "Staff")
    kim = fake.add_staff(STORE, "kim@example.com")
    fake.add_staff("other", "elsewhere@example.com")
    assert await adapter.list_staff(CLUB) == [
        StaffMember(str(sam), "Sam@Example.com", "Sam", "Staff"),
        StaffMember(str(kim), "kim@example.com"),
    ]


async def test_referral_types_are_listed_by_id_and_name(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    walk_in = fake.add_referral_type(STORE, "Walk-in")
    fake.add_referral_type("other", "Radio")
    assert await adapter.list_lead_sources(CLUB) == [LeadSource(str(walk_in), "Walk-in")]


async def test_referral_types_cannot_be_created(
    adapter: ClubReadyAdapter, fake: FakeClubReady
) -> None:
    with pytest.raises(PermanentPartnerError, match=r"leadsource\.create is not supported"):
        await adapter.create_lead_source(CLUB, "Radio")
    assert fake.requests == []


# -- settings and subscriptions ----------------------------------------------------------------


def test_it_can_save_list_staff_and_list_referral_types_only() -> None:
    assert ClubReadyAdapter.supported == ALL


@pytest.mark.parametrize(
    "capability", [Capability.LEADSOURCE_CREATE, Capability.STAFF_FIND_BY_EMAIL]
)
def test_a_capability_it_lacks_is_refused(
    session: aiohttp.ClientSession, capability: Capability
) -> None:
    with pytest.raises(AdapterConfigError, match=f"cannot {capability}"):
        ClubReadyAdapter(config("http://cr.invalid", capabilities=ALL | {capability}), session)


@pytest.mark.parametrize(
    ("changes", "env", "problem"),
    [
        ({"key_env": ""}, None, r"settings\.key_env is not given"),
        ({}, {}, r"CLUBREADY_KEY \(settings\.key_env\) is not set"),
        ({"timeout": "soon"}, None, r"settings\.timeout must be a number"),
        ({"chain_id": 658}, None, "adapter 'clubready' has no setting chain_id"),
    ],
)
def test_settings_it_cannot_use_are_refused(
    session: aiohttp.ClientSession,
    changes: dict[str, Any],
    env: dict[str, str] | None,
    problem: str,
) -> None:
    with pytest.raises(AdapterConfigError, match=problem):
        ClubReadyAdapter(config("http://cr.invalid", env=env, **changes), session)


def test_a_url_that_is_not_http_is_refused(session: aiohttp.ClientSession) -> None:
    with pytest.raises(AdapterConfigError, match="url must be http"):
        ClubReadyAdapter(config("ftp://clubready.example/api"), session)


def test_a_subscription_with_members_is_refused(session: aiohttp.ClientSession) -> None:
    adapter = ClubReadyAdapter(config("http://cr.invalid"), session)
    adapter.check_subscription(frozenset({"PROSPECT"}))
    with pytest.raises(
        AdapterConfigError, match="prospects only and cannot receive FORMER_MEMBER, MEMBER"
    ):
        adapter.check_subscription(frozenset({"PROSPECT", "MEMBER", "FORMER_MEMBER"}))


async def test_a_member_is_not_sent(adapter: ClubReadyAdapter, fake: FakeClubReady) -> None:
    with pytest.raises(PermanentPartnerError, match="prospects only, not a MEMBER"):
        await adapter.save_user(CLUB, outbound(user_type="MEMBER"))
    assert fake.requests == []


async def test_the_fake_refuses_a_field_clubready_does_not_name(
    fake: FakeClubReady, session: aiohttp.ClientSession
) -> None:
    # The fake is stricter than ClubReady so that a misspelt field fails here.
    url = f"{fake.url}/users/prospect?ApiKey={TOKEN}&StoreId={STORE}"
    body = {
        "FirstName": "Ada",
        "LastName": "L",
        "Email": "a@b.c",
        "SendEmail": False,
        "Phone2": "1",
    }
    async with session.post(url, json=body) as response:
        assert response.status == 200
        assert await response.json() == {"Success": False, "Message": "Unknown field(s): Phone2"}


# -- golden files ------------------------------------------------------------------------------


def _same_as_golden(name: str, body: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("HUB_UPDATE_GOLDEN"):
        path.write_bytes(body)
    assert body == path.read_bytes(), f"{name} changed: review it, then HUB_UPDATE_GOLDEN=1"


async def test_golden_prospect_and_update(adapter: ClubReadyAdapter, fake: FakeClubReady) -> None:
    user: OutboundUser = test_golden.USER
    club = ClubRef(test_golden.CLUB.client_id, "123")
    fake.add_staff("123", "sam@example.com")  # 1001
    fake.add_referral_type("123", "Walk-in")  # 1002
    user = replace(user, user_type="PROSPECT", owner_id="1001", lead_source_id="1002")
    created = await adapter.save_user(club, replace(user, partner_id=None))
    await adapter.save_user(club, replace(user, partner_id=created.partner_id))
    [create, update] = [r for r in fake.requests if r.method in ("POST", "PUT")]
    assert (create.status, update.status) == (200, 200)
    assert fake.users[str(user.hub_uuid)]["LastName"] == "Lovelace-Byron"
    _same_as_golden("clubready_prospect.json", create.body)
    _same_as_golden("clubready_update.json", update.body)
