"""The mindbody adapter against FakeMindbody, over real HTTP; its wire format as golden files.

To accept an intended change of the wire format:
HUB_UPDATE_GOLDEN=1 pytest tests/adapters/test_mindbody.py
"""

from __future__ import annotations

import asyncio
import datetime
import os
import sys
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
    PartnerConfig,
    PermanentPartnerError,
    StaffMember,
    TransientPartnerError,
)
from adapters.fakes.mindbody import FakeMindbody
from adapters.mindbody import MindbodyAdapter, until_tomorrow
from tests.adapters.conftest import outbound
from tests.adapters.test_golden import USER

GOLDEN = Path(__file__).parent / "golden"
API_KEY, USERNAME, PASSWORD = "mb-api-key", "hub-staff", "s3cret"
ENV = {"MB_KEY": API_KEY, "MB_PASSWORD": PASSWORD}
SITE = "-99"
CLUB = ClubRef(SITE, "1")
EMAIL = "ada@example.com"
CAPABILITIES = frozenset({Capability.USER_SAVE, Capability.STAFF_LIST, Capability.LEADSOURCE_LIST})


def config(url: str, env: dict[str, str] | None = None, **settings: Any) -> PartnerConfig:
    return PartnerConfig(
        name="mb",
        url=url,
        capabilities=settings.pop("capabilities", CAPABILITIES),
        settings={
            "key_env": "MB_KEY",
            "username": USERNAME,
            "password_env": "MB_PASSWORD",
            "timeout": 2,
            **settings,
        },
        env=ENV if env is None else env,
    )


class Clock:
    """A UTC clock the test moves, shared by the adapter's quota and the fake's."""

    def __init__(self, moment: datetime.datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime.datetime:
        return self.moment


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def fake() -> AsyncIterator[FakeMindbody]:
    fake = FakeMindbody(API_KEY, USERNAME, PASSWORD)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def build(fake: FakeMindbody, session: aiohttp.ClientSession) -> Any:
    def build(**settings: Any) -> MindbodyAdapter:
        return MindbodyAdapter(config(fake.url, **settings), session)

    return build


@pytest.fixture
def adapter(build: Any) -> MindbodyAdapter:
    return build()  # type: ignore[no-any-return]


def paths(fake: FakeMindbody) -> list[str]:
    return [f"{r.method} {r.path.removeprefix('/public/v6')}" for r in fake.requests]


# -- saves --------------------------------------------------------------------------------------


async def test_create_then_update_keeps_the_client_id(
    adapter: MindbodyAdapter, fake: FakeMindbody
) -> None:
    created = await adapter.save_user(CLUB, outbound())
    updated = await adapter.save_user(
        CLUB, outbound(partner_id=created.partner_id, firstname="Augusta")
    )
    assert updated.partner_id == created.partner_id == "100000001"
    assert fake.creates == {EMAIL: 1}
    assert fake.users[created.partner_id]["FirstName"] == "Augusta"
    assert paths(fake) == [
        "POST /usertoken/issue",
        "GET /client/clients",
        "POST /client/addclient",
        "POST /client/updateclient",
    ]
    issue, search, add, update = fake.requests
    assert issue.json == {"Username": USERNAME, "Password": PASSWORD}
    assert "Authorization" not in issue.headers
    assert search.query == {"searchText": EMAIL, "limit": "200"}
    for request in fake.requests:
        assert request.headers["API-Key"] == API_KEY
        assert request.headers["SiteId"] == SITE
    assert add.headers["Authorization"] == update.headers["Authorization"] == "Bearer token-1"
    assert update.json["Client"]["Id"] == created.partner_id
    assert update.json["CrossRegionalUpdate"] is False


async def test_a_repeated_create_finds_the_client_and_updates_it(
    adapter: MindbodyAdapter, fake: FakeMindbody
) -> None:
    first = await adapter.save_user(CLUB, outbound())
    # The hub lost the first answer (a worker killed before its commit) and creates again.
    again = await adapter.save_user(CLUB, outbound(email="ADA@example.com ", lastname="LOVELACE"))
    assert again.partner_id == first.partner_id
    assert fake.creates == {EMAIL: 1}
    assert len(fake.users) == 1
    assert again.notes == ("client 100000001 has this email and name: updated, not added again",)
    assert paths(fake)[-1] == "POST /client/updateclient"


async def test_someone_else_with_the_same_email_is_not_taken_for_the_user(
    adapter: MindbodyAdapter, fake: FakeMindbody
) -> None:
    parent = fake.add_client(
        SITE, {"FirstName": "Annabella", "LastName": "Lovelace", "Email": EMAIL}
    )
    elsewhere = fake.add_client("-98", {"FirstName": "Ada", "LastName": "Lovelace", "Email": EMAIL})
    result = await adapter.save_user(CLUB, outbound())
    assert result.partner_id not in (parent, elsewhere)
    assert fake.creates == {EMAIL: 1}
    assert result.notes == ()


async def test_without_an_email_the_client_is_added_without_a_search(
    adapter: MindbodyAdapter, fake: FakeMindbody
) -> None:
    result = await adapter.save_user(CLUB, outbound(email=None))
    assert paths(fake) == ["POST /usertoken/issue", "POST /client/addclient"]
    assert "not searched for before the add: no email to search by" in result.notes


async def test_what_a_client_takes_is_sent_and_the_rest_noted(
    adapter: MindbodyAdapter, fake: FakeMindbody
) -> None:
    user = outbound(
        user_type="MEMBER",
        status="INACTIVE",
        birthdate="1990-12-10",
        gender="F",
        mobile="555-0100",
        company="Analytical Engines",
        trial_start="2026-11-01",
        trial_end="2026-11-14",
    )
    result = await adapter.save_user(ClubRef(SITE, "K-1"), user)
    assert fake.users[result.partner_id] == {
        "Id": result.partner_id,
        "FirstName": "Ada",
        "LastName": "Lovelace",
        "Email": EMAIL,
        "MobilePhone": "555-0100",
        "BirthDate": "1990-12-10T00:00:00",
        "Gender": "Female",
        "IsProspect": False,
        "Active": False,
    }
    assert result.notes == (
        "HomeLocation not sent: the location ID 'K-1' is not a number",
        "company not sent: a Mindbody client has no such field",
        "trialStart not sent: a Mindbody client has no such field",
        "trialEnd not sent: a Mindbody client has no such field",
    )


async def test_the_owner_goes_as_the_clients_sales_rep(build: Any, fake: FakeMindbody) -> None:
    sam = fake.add_staff(SITE, "Sam@Example.com", "Sam", "Staff")
    adapter = build(sales_rep_number=2)
    [staff] = await adapter.list_staff(CLUB)
    assert staff == StaffMember(str(sam), "Sam@Example.com", "Sam", "Staff")
    result = await adapter.save_user(CLUB, outbound(owner_id=staff.id))
    client = fake.users[result.partner_id]
    assert client["SalesReps"] == [{"Id": sam, "SalesRepNumber": 2}]
    assert client["HomeLocation"] == {"Id": 1}
    assert result.notes == ()


async def test_an_owner_that_is_no_staff_id_is_left_out(
    adapter: MindbodyAdapter, fake: FakeMindbody
) -> None:
    result = await adapter.save_user(CLUB, outbound(owner_id="S-17"))
    assert "SalesReps" not in fake.users[result.partner_id]
    assert result.notes == ("owner 'S-17' not sent: a Mindbody staff Id is a number",)
    without = await adapter.save_user(CLUB, outbound(partner_id=result.partner_id))
    assert without.notes == ()


async def test_a_matched_lead_source_goes_as_referred_by_and_others_are_left_out(
    adapter: MindbodyAdapter, fake: FakeMindbody
) -> None:
    fake.add_lead_source(SITE, "Walk-In")
    fake.add_lead_source(SITE, "Friend")
    fake.add_lead_source("-98", "Radio")
    sources = await adapter.list_lead_sources(CLUB)
    assert sources == [LeadSource("Walk-In", "Walk-In"), LeadSource("Friend", "Friend")]
    matched = await adapter.save_user(
        CLUB, outbound(lead_source_id="Walk-In", lead_source_name="walk-in")
    )
    assert fake.users[matched.partner_id]["ReferredBy"] == "Walk-In"
    unmatched = await adapter.save_user(
        CLUB, outbound(partner_id=matched.partner_id, lead_source_name="Radio")
    )
    assert fake.users[matched.partner_id]["ReferredBy"] == "Walk-In"  # kept: not sent
    assert unmatched.notes == ("lead source 'Radio' not sent: not a referral type of the site",)


async def test_lead_sources_cannot_be_created(session: aiohttp.ClientSession) -> None:
    with pytest.raises(AdapterConfigError, match=r"cannot leadsource\.create"):
        MindbodyAdapter(config("http://mb.invalid", capabilities=frozenset(Capability)), session)
    adapter = MindbodyAdapter(config("http://mb.invalid"), session)
    with pytest.raises(PermanentPartnerError, match="not supported"):
        await adapter.create_lead_source(CLUB, "Radio")


async def test_the_staff_list_is_read_page_by_page(
    adapter: MindbodyAdapter, fake: FakeMindbody
) -> None:
    for n in range(250):
        fake.add_staff(SITE, f"staff{n}@example.com")
    fake.add_staff("-98", "elsewhere@example.com")
    staff = await adapter.list_staff(CLUB)
    assert [s.email for s in staff] == [f"staff{n}@example.com" for n in range(250)]
    pages = [r.query for r in fake.requests if r.path.endswith("/staff/staff")]
    assert pages == [{"limit": "200", "offset": "0"}, {"limit": "200", "offset": "200"}]


# -- the staff user token -----------------------------------------------------------------------


async def test_one_token_serves_every_call_of_a_site(
    adapter: MindbodyAdapter, fake: FakeMindbody
) -> None:
    await asyncio.gather(*(adapter.list_lead_sources(CLUB) for _ in range(5)))
    await adapter.list_lead_sources(ClubRef("-98", "1"))
    issues = [r.headers["SiteId"] for r in fake.requests if r.path.endswith("/issue")]
    assert issues == [SITE, "-98"]


async def test_an_expired_token_is_issued_again_once(
    adapter: MindbodyAdapter, fake: FakeMindbody
) -> None:
    await adapter.list_lead_sources(CLUB)
    fake.expire_tokens()
    assert await adapter.list_lead_sources(CLUB) == []
    assert [r.status for r in fake.requests] == [200, 200, 401, 200, 200]
    assert fake.requests[-1].headers["Authorization"] == "Bearer token-2"


async def test_a_401_after_a_new_token_is_permanent(
    adapter: MindbodyAdapter, fake: FakeMindbody
) -> None:
    await adapter.list_lead_sources(CLUB)
    fake.expire_tokens()
    fake.password = "changed"
    with pytest.raises(PermanentPartnerError) as caught:
        await adapter.list_lead_sources(CLUB)
    assert caught.value.status == 401
    assert "StaffAuthenticationFailed" in caught.value.message
    assert [r.status for r in fake.requests[2:]] == [401, 401]  # the call, one issue, no more


async def test_a_wrong_api_key_is_permanent_at_the_first_call(
    fake: FakeMindbody, session: aiohttp.ClientSession
) -> None:
    adapter = MindbodyAdapter(config(fake.url, env={**ENV, "MB_KEY": "wrong"}), session)
    with pytest.raises(PermanentPartnerError) as caught:
        await adapter.save_user(CLUB, outbound())
    assert caught.value.status == 401
    assert "DeniedAccess: invalid or missing API-Key" in caught.value.message
    assert '"Code":"DeniedAccess"' in caught.value.answer
    assert len(fake.requests) == 1


# -- Mindbody's errors --------------------------------------------------------------------------


async def test_a_client_without_a_first_name_is_refused_for_good(
    adapter: MindbodyAdapter, fake: FakeMindbody
) -> None:
    with pytest.raises(PermanentPartnerError) as caught:
        await adapter.save_user(CLUB, outbound(firstname=""))
    assert caught.value.status == 400
    assert "MissingRequiredFields: FirstName: is required" in caught.value.message
    assert caught.value.message.startswith("mb: POST /client/addclient answered 400")
    assert '"Error":{"Message":' in caught.value.answer
    assert fake.users == {}


async def test_an_update_of_an_unknown_client_is_refused_for_good(
    adapter: MindbodyAdapter, fake: FakeMindbody
) -> None:
    with pytest.raises(PermanentPartnerError) as caught:
        await adapter.save_user(CLUB, outbound(partner_id="100000999"))
    assert caught.value.status == 404
    assert "ClientNotFound" in caught.value.message


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_transient(
    adapter: MindbodyAdapter, fake: FakeMindbody, status: int
) -> None:
    fake.fail_next(1, status=status)
    with pytest.raises(TransientPartnerError) as caught:
        await adapter.save_user(CLUB, outbound())
    assert (caught.value.status, caught.value.retry_after) == (status, None)
    assert '"Error":{"Message":"failing on purpose"' in caught.value.answer
    assert (await adapter.save_user(CLUB, outbound())).partner_id
    assert fake.creates == {EMAIL: 1}


@pytest.mark.parametrize(
    "answer", ["not json", "[]", "{}", '{"Client": {}}', '{"Client": {"Id": ""}}']
)
async def test_a_save_answer_without_a_client_id_is_permanent(
    adapter: MindbodyAdapter, fake: FakeMindbody, answer: str
) -> None:
    await adapter.list_lead_sources(CLUB)  # the token first, so the update is the next call
    fake.fail_next(1, status=200, body=answer)
    with pytest.raises(PermanentPartnerError) as caught:
        await adapter.save_user(CLUB, outbound(partner_id="100000001"))
    assert (caught.value.status, caught.value.answer) == (200, answer)


@pytest.mark.parametrize(
    "answer", ['{"StaffMembers": {}}', '{"StaffMembers": [{"Email": "a@b"}]}', "{}"]
)
async def test_a_staff_list_that_makes_no_sense_is_permanent(
    adapter: MindbodyAdapter, fake: FakeMindbody, answer: str
) -> None:
    await adapter.list_lead_sources(CLUB)
    fake.fail_next(1, status=200, body=answer)
    with pytest.raises(PermanentPartnerError, match="GET /staff/staff"):
        await adapter.list_staff(CLUB)


async def test_a_token_answer_without_a_token_is_permanent(
    adapter: MindbodyAdapter, fake: FakeMindbody
) -> None:
    fake.fail_next(1, status=200, body='{"TokenType": "Bearer"}')
    with pytest.raises(PermanentPartnerError, match="no AccessToken"):
        await adapter.list_staff(CLUB)


# -- the daily call quota -----------------------------------------------------------------------


async def test_the_adapter_stops_before_the_sites_quota(fake: FakeMindbody, build: Any) -> None:
    fake.daily_quota = 10
    adapter = build(daily_quota=10)  # as the site's; one call is kept in reserve
    for n in range(4):  # the token, then a search and an add each
        await adapter.save_user(CLUB, outbound(email=f"ada{n}@example.com"))
    with pytest.raises(TransientPartnerError) as caught:  # its search is not sent
        await adapter.save_user(CLUB, outbound(email="ada4@example.com"))
    assert caught.value.status is None
    assert "not sent, 9 of the site's 10 calls today are made (keeping 1 in reserve)" in str(
        caught.value
    )
    now = datetime.datetime.now(datetime.UTC)
    assert caught.value.retry_after == pytest.approx(until_tomorrow(now), abs=5)
    assert fake.calls_today(SITE) == await adapter.quota.used(SITE) == 9
    assert 429 not in [r.status for r in fake.requests]
    with pytest.raises(TransientPartnerError):
        await adapter.list_staff(CLUB)
    assert len(fake.requests) == 9  # refused without a call
    # Another site has a quota of its own.
    assert await adapter.list_staff(ClubRef("-98", "1")) == []


async def test_the_quota_is_counted_per_utc_day(fake: FakeMindbody, build: Any) -> None:
    clock = Clock(datetime.datetime(2026, 3, 1, 23, 59, 30, tzinfo=datetime.UTC))
    fake.now = clock
    adapter = build(daily_quota=100, quota_reserve=98)
    adapter.quota.now = clock
    await adapter.list_staff(CLUB)
    with pytest.raises(TransientPartnerError) as caught:
        await adapter.list_staff(CLUB)
    assert caught.value.retry_after == 30.0
    clock.moment += datetime.timedelta(seconds=30)
    await adapter.list_staff(CLUB)
    assert await adapter.quota.used(SITE) == 1
    assert fake.calls_today(SITE) == 1


def test_the_reserve_defaults_to_one_percent_and_at_least_one(
    session: aiohttp.ClientSession,
) -> None:
    for quota, reserve in [(1000, 10), (5000, 50), (150, 1), (2, 1)]:
        adapter = MindbodyAdapter(config("http://mb.invalid", daily_quota=quota), session)
        assert (adapter.quota.limit, adapter.quota.reserve) == (quota, reserve)
    assert MindbodyAdapter(config("http://mb.invalid"), session).quota.limit == 1000


async def test_a_429_for_a_quota_used_elsewhere_waits_until_tomorrow(
    fake: FakeMindbody, adapter: MindbodyAdapter
) -> None:
    fake.daily_quota = 2  # another app used the rest of the site's calls
    await adapter.list_staff(CLUB)
    with pytest.raises(TransientPartnerError) as caught:
        await adapter.list_staff(CLUB)
    assert caught.value.status == 429
    assert "TooManyRequests" in caught.value.message
    now = datetime.datetime.now(datetime.UTC)
    assert caught.value.retry_after == pytest.approx(until_tomorrow(now), abs=5)
    with pytest.raises(TransientPartnerError) as again:
        await adapter.list_staff(CLUB)
    assert again.value.status is None  # the adapter knows: no more calls today
    assert len(fake.requests) == 3


@pytest.mark.parametrize("how", ["knob", "fake's quota"])
async def test_a_429_with_retry_after_is_honoured(
    fake: FakeMindbody, adapter: MindbodyAdapter, how: str
) -> None:
    await adapter.list_staff(CLUB)
    if how == "knob":
        fake.fail_next(1, status=429, retry_after=30)
    else:
        fake.daily_quota, fake.quota_retry_after = 2, 45
    with pytest.raises(TransientPartnerError) as caught:
        await adapter.list_staff(CLUB)
    assert (caught.value.status, caught.value.retry_after) == (429, 30 if how == "knob" else 45)
    fake.daily_quota = 1000
    assert await adapter.list_staff(CLUB) == []  # a throttle, not the day's end


# -- settings and subscriptions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "env", "message"),
    [
        ({"username": ""}, ENV, r"settings\.username is not given"),
        ({"username": None}, ENV, r"settings\.username is not given"),
        ({"password_env": ""}, ENV, r"settings\.password_env is not given"),
        ({}, {"MB_KEY": API_KEY}, r"MB_PASSWORD \(settings\.password_env\) is not set"),
        ({"key_env": None}, ENV, r"settings\.key_env is not given"),
        ({"daily_quota": 0}, ENV, r"settings\.daily_quota must be a whole number of 1 or more"),
        ({"daily_quota": "1000"}, ENV, r"settings\.daily_quota must be a whole number"),
        ({"daily_quota": True}, ENV, r"settings\.daily_quota must be a whole number"),
        ({"daily_quota": 1}, ENV, r"quota_reserve \(1\) must be below settings\.daily_quota"),
        ({"quota_reserve": -1}, ENV, r"settings\.quota_reserve must be a whole number of 0"),
        ({"quota_reserve": 1000}, ENV, r"quota_reserve \(1000\) must be below"),
        ({"sales_rep_number": 7}, ENV, r"settings\.sales_rep_number must be from 1 to 6"),
        ({"sales_rep_number": 0}, ENV, r"settings\.sales_rep_number must be a whole number"),
        ({"timeout": 0}, ENV, r"settings\.timeout must be above 0"),
    ],
)
def test_settings_it_cannot_use_are_refused(
    session: aiohttp.ClientSession, settings: dict[str, Any], env: dict[str, str], message: str
) -> None:
    with pytest.raises(AdapterConfigError, match=message):
        MindbodyAdapter(
            config("https://api.mindbodyonline.com/public/v6", env, **settings), session
        )


def test_a_url_that_is_not_http_is_refused(session: aiohttp.ClientSession) -> None:
    with pytest.raises(AdapterConfigError, match="url must be http"):
        MindbodyAdapter(config("ftp://api.mindbodyonline.com"), session)


def test_every_kind_of_client_is_taken_and_nothing_else(
    session: aiohttp.ClientSession,
) -> None:
    adapter = MindbodyAdapter(config("http://mb.invalid"), session)
    adapter.check_subscription(frozenset({"PROSPECT", "MEMBER", "FORMER_MEMBER"}))
    with pytest.raises(AdapterConfigError, match=r"takes clients .* not EMPLOYEE"):
        adapter.check_subscription(frozenset({"PROSPECT", "EMPLOYEE"}))


# -- the wire format ----------------------------------------------------------------------------


def _same_as_golden(name: str, body: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("HUB_UPDATE_GOLDEN"):
        path.write_bytes(body)
    assert body == path.read_bytes(), f"{name} changed: review it, then HUB_UPDATE_GOLDEN=1"


@pytest.mark.parametrize(("partner_id", "golden"), [(None, "add"), ("100000001", "update")])
async def test_the_client_sent_for_a_user_with_every_field(
    adapter: MindbodyAdapter, fake: FakeMindbody, partner_id: str | None, golden: str
) -> None:
    club = ClubRef(SITE, "123")
    fake.add_staff(SITE, "sam@example.com", staff_id=17)
    fake.add_lead_source(SITE, "Walk-in")
    if partner_id is not None:
        fake.add_client(SITE, {"FirstName": "Ada", "LastName": "Lovelace"})
    user = replace(USER, partner_id=partner_id, owner_id="17", lead_source_id="Walk-in")
    result = await adapter.save_user(club, user)
    request = fake.requests[-1]
    assert (request.path, request.status) == (f"/public/v6/client/{golden}client", 200)
    assert result.notes == (
        "company not sent: a Mindbody client has no such field",
        "trialStart not sent: a Mindbody client has no such field",
        "trialEnd not sent: a Mindbody client has no such field",
    )
    _same_as_golden(f"mindbody_{golden}client.json", request.body)


# -- the fake as a process ----------------------------------------------------------------------


async def test_the_fake_runs_as_a_process(session: aiohttp.ClientSession) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adapters.fakes.mindbody", "--port", "0",
        "--key-env", "FAKE_MB_KEY", "--username", USERNAME, "--password-env", "FAKE_MB_PASSWORD",
        # "=": Mindbody's sandbox site, -99, would read as an option
        f"--staff={SITE}:sam@example.com", f"--referral-type={SITE}:Walk-in: the door",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "FAKE_MB_KEY": API_KEY, "FAKE_MB_PASSWORD": PASSWORD},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        assert "fake Mindbody site listening on http://127.0.0.1:" in line, line
        adapter = MindbodyAdapter(config(line.rsplit(" ", 1)[1].strip()), session)
        assert [s.email for s in await adapter.list_staff(CLUB)] == ["sam@example.com"]
        assert [s.name for s in await adapter.list_lead_sources(CLUB)] == ["Walk-in: the door"]
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0
