"""The generic_json adapter against FakeGenericJson, over real HTTP."""

from __future__ import annotations

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
from adapters.fakes.generic_json import FakeGenericJson
from adapters.generic_json import GenericJsonAdapter, user_json
from tests.adapters.conftest import CLUB, HUB_UUID, TOKEN, config, json_adapter, outbound


@pytest.fixture
def adapter(json_fake: FakeGenericJson, session: aiohttp.ClientSession) -> GenericJsonAdapter:
    return json_adapter(json_fake.url, session)


async def test_create_then_update_keeps_the_partner_id(
    adapter: GenericJsonAdapter, json_fake: FakeGenericJson
) -> None:
    created = await adapter.save_user(CLUB, outbound())
    updated = await adapter.save_user(
        CLUB, outbound(partner_id=created.partner_id, firstname="Augusta")
    )
    assert updated.partner_id == created.partner_id == json_fake.partner_ids[str(HUB_UUID)]
    assert json_fake.creates[str(HUB_UUID)] == 1
    assert json_fake.users[str(HUB_UUID)]["firstName"] == "Augusta"
    assert [r.status for r in json_fake.requests] == [201, 200]
    assert [r.headers.get("X-Partner-Id") for r in json_fake.requests] == [
        None,
        created.partner_id,
    ]


async def test_a_second_save_without_the_partner_id_is_a_second_create(
    adapter: GenericJsonAdapter, json_fake: FakeGenericJson
) -> None:
    # The partner answers it as an update (idempotent by UUID), but the hub sent a create.
    first = await adapter.save_user(CLUB, outbound())
    again = await adapter.save_user(CLUB, outbound(firstname="Augusta"))
    assert again.partner_id == first.partner_id
    assert [r.status for r in json_fake.requests] == [201, 200]
    assert json_fake.creates[str(HUB_UUID)] == 2
    assert json_fake.create_calls == 2
    assert [r.create for r in json_fake.requests] == [str(HUB_UUID)] * 2


async def test_an_update_with_another_partners_id_is_refused(
    adapter: GenericJsonAdapter, json_fake: FakeGenericJson
) -> None:
    await adapter.save_user(CLUB, outbound())
    with pytest.raises(PermanentPartnerError) as caught:
        await adapter.save_user(CLUB, outbound(partner_id="P-999"))
    assert caught.value.status == 409
    assert json_fake.creates[str(HUB_UUID)] == 1


async def test_fields_without_a_value_are_left_out(
    adapter: GenericJsonAdapter, json_fake: FakeGenericJson
) -> None:
    await adapter.save_user(CLUB, outbound(owner_id="S-1"))
    assert json_fake.users[str(HUB_UUID)] == {
        "userType": "PROSPECT",
        "status": "ACTIVE",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "email": "ada@example.com",
        "ownerId": "S-1",
    }


async def test_every_request_carries_auth_and_an_idempotency_key(
    adapter: GenericJsonAdapter, json_fake: FakeGenericJson
) -> None:
    user = outbound()
    await adapter.save_user(CLUB, user)
    await adapter.list_staff(CLUB)
    await adapter.list_staff(CLUB)
    save, staff, again = json_fake.requests
    assert save.method == "PUT"
    assert save.path == f"/api/clubs/K-1/users/{HUB_UUID}"
    assert save.headers["Authorization"] == f"Bearer {TOKEN}"
    assert save.headers["Idempotency-Key"] == user.idempotency_key
    assert save.headers["X-Hub-Record"] == str(HUB_UUID)
    assert save.headers["Content-Type"] == "application/json"
    assert staff.headers["Authorization"] == f"Bearer {TOKEN}"
    assert staff.headers["Idempotency-Key"] == again.headers["Idempotency-Key"]
    assert "X-Hub-Record" not in staff.headers


async def test_a_save_without_a_delivery_key_gets_a_stable_one(
    adapter: GenericJsonAdapter, json_fake: FakeGenericJson
) -> None:
    await adapter.save_user(CLUB, outbound(idempotency_key=""))
    await adapter.save_user(CLUB, outbound(idempotency_key=""))
    first, second = (r.headers["Idempotency-Key"] for r in json_fake.requests)
    assert first == second != ""


async def test_path_parts_are_escaped(
    adapter: GenericJsonAdapter, json_fake: FakeGenericJson
) -> None:
    club = ClubRef("C-1", "K/1 ?#%é")
    staff_id = json_fake.add_staff(club.club_id, "sam@example.com")
    await adapter.save_user(club, outbound())
    assert await adapter.list_staff(club) == [StaffMember(staff_id, "sam@example.com")]
    assert json_fake.requests[0].path == f"/api/clubs/K/1 ?#%é/users/{HUB_UUID}"
    assert json_fake.requests[1].query == {}


async def test_staff_are_listed_and_found_by_email(
    adapter: GenericJsonAdapter, json_fake: FakeGenericJson
) -> None:
    sam = json_fake.add_staff("K-1", "Sam@Example.com", "Sam", "Staff")
    json_fake.add_staff("K-1", "kim+desk@example.com")
    json_fake.add_staff("K-2", "elsewhere@example.com")
    listed = await adapter.list_staff(CLUB)
    assert [s.email for s in listed] == ["Sam@Example.com", "kim+desk@example.com"]
    assert listed[0] == StaffMember(sam, "Sam@Example.com", "Sam", "Staff")
    assert await adapter.find_staff_by_email(CLUB, "sam@example.com") == [listed[0]]
    kim = await adapter.find_staff_by_email(CLUB, "kim+desk@example.com")
    assert [s.email for s in kim] == ["kim+desk@example.com"]
    assert json_fake.requests[-1].query == {"email": "kim+desk@example.com"}
    assert await adapter.find_staff_by_email(CLUB, "nobody@example.com") == []


async def test_lead_sources_are_listed_and_created_once_per_key(
    adapter: GenericJsonAdapter, json_fake: FakeGenericJson
) -> None:
    walk_in = json_fake.add_lead_source("K-1", "Walk-in")
    assert await adapter.list_lead_sources(CLUB) == [LeadSource(walk_in, "Walk-in")]
    created = await adapter.create_lead_source(CLUB, "Facebook")
    # A retried create carries the same Idempotency-Key, so the partner makes one.
    assert await adapter.create_lead_source(CLUB, "Facebook") == created
    assert await adapter.list_lead_sources(CLUB) == [LeadSource(walk_in, "Walk-in"), created]
    posts = [r for r in json_fake.requests if r.method == "POST"]
    assert [p.json for p in posts] == [{"name": "Facebook"}] * 2


@pytest.mark.parametrize(
    "answer", ["{}", '{"id": ""}', '{"id": true}', "[]", "not json", '{"id": null}']
)
async def test_a_save_answer_without_an_id_is_permanent(
    adapter: GenericJsonAdapter, json_fake: FakeGenericJson, answer: str
) -> None:
    json_fake.fail_next(1, status=200, body=answer)
    with pytest.raises(PermanentPartnerError) as caught:
        await adapter.save_user(CLUB, outbound())
    assert caught.value.answer == answer
    assert caught.value.status == 200


async def test_a_numeric_id_is_kept_as_text(
    adapter: GenericJsonAdapter, json_fake: FakeGenericJson
) -> None:
    json_fake.fail_next(1, status=201, body='{"id": 4711}')
    assert (await adapter.save_user(CLUB, outbound())).partner_id == "4711"


@pytest.mark.parametrize(
    "answer", ['{"id": "S-1"}', '[{"email": "a@example.com"}]', '[{"id": "S-1", "email": 7}]']
)
async def test_a_staff_list_that_makes_no_sense_is_permanent(
    adapter: GenericJsonAdapter, json_fake: FakeGenericJson, answer: str
) -> None:
    json_fake.fail_next(1, status=200, body=answer)
    with pytest.raises(PermanentPartnerError, match="GET /clubs/K-1/staff"):
        await adapter.list_staff(CLUB)


async def test_the_partner_refuses_what_the_contract_does_not_name(
    json_fake: FakeGenericJson, session: aiohttp.ClientSession
) -> None:
    # The fake is the contract's witness: it must refuse a stray field.
    async with session.put(
        f"{json_fake.url}/clubs/K-1/users/{HUB_UUID}",
        json={**user_json(outbound()), "nickname": "Ada"},
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Idempotency-Key": "k",
            "X-Hub-Record": str(HUB_UUID),
        },
    ) as response:
        assert response.status == 400
        assert "nickname: unknown field" in await response.text()


def test_it_can_do_everything_the_contract_names(session: aiohttp.ClientSession) -> None:
    adapter = GenericJsonAdapter(config("http://partner.invalid"), session)
    assert adapter.supported == frozenset(Capability)


def test_a_missing_key_env_setting_is_refused(session: aiohttp.ClientSession) -> None:
    with pytest.raises(AdapterConfigError, match=r"settings\.key_env is not given"):
        GenericJsonAdapter(config("http://partner.invalid", key_env=""), session)


def test_a_url_that_is_not_http_is_refused(session: aiohttp.ClientSession) -> None:
    with pytest.raises(AdapterConfigError, match="url must be http"):
        GenericJsonAdapter(config("ftp://partner.example"), session)
