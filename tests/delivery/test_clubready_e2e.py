"""ClubReady end to end: prospects posted at the ingress arrive at a fake ClubReady store.

The partner `clubready` receives prospects with their owner and lead source
(referral types are listed, never created: ClubReady has no create), its
store being "K-clubready". ClubReady's quirk, a 200 with `"Success": false`,
ends as a dead letter when its message is a validation, and is retried and
delivered once when it says to come back later.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from adapters.fakes.clubready import FakeClubReady
from tests.conftest import eventually
from tests.delivery.conftest import TOKEN, DeliveryHub, Partner, StartHub, prospect_xml, staff_xml

STORE = "K-clubready"


def clubready_partner(key_env: str = "HUB_TEST_PARTNER_TOKEN") -> Partner:
    return Partner(
        "clubready",
        ["user.save", "staff.list", "leadsource.list"],
        receives=["PROSPECT"],
        extras=["owner", "lead_source"],
        adapter="clubready",
        make_fake=lambda: FakeClubReady(TOKEN),
        settings=f'{{ key_env = "{key_env}", timeout = 2 }}',
    )


def fake_of(hub: DeliveryHub) -> FakeClubReady:
    fake = hub.server("clubready")
    assert isinstance(fake, FakeClubReady)
    return fake


async def attempts(hub: DeliveryHub) -> list[tuple[Any, ...]]:
    rows = await hub.pool.fetch(
        "SELECT outcome, status, answer, notes FROM delivery_attempts"
        " WHERE partner = 'clubready' ORDER BY id"
    )
    return [tuple(row) for row in rows]


async def dead_letter(hub: DeliveryHub) -> Any:
    async def kept() -> list[Any]:
        return await hub.pool.fetch("SELECT partner, uuid, reason FROM dead_letters")  # type: ignore[no-any-return]

    [row] = await eventually(kept, within=20)
    return row


async def test_a_prospect_is_created_with_owner_and_referral_type_then_updated(
    start_hub: StartHub,
) -> None:
    hub = await start_hub([clubready_partner()])
    fake = fake_of(hub)
    sam = fake.add_staff(STORE, " Sam.Staff@Example.com ", "Sam", "Staff")
    walk_in = fake.add_referral_type(STORE, "Walk-In")
    await hub.post("staff", staff_xml("S-17", "sam.staff@example.COM"))
    record = await hub.post("user", prospect_xml("R-1", owner="S-17", lead_source="walk-in"))

    [user] = await fake.wait_for_users(1, timeout=20)
    assert (user["AssignToId"], user["ReferralTypeId"]) == (sam, walk_in)
    assert (user["FirstName"], user["Email"], user["ExternalId"]) == (
        "Ada",
        "ada@example.com",
        record,
    )
    assert user["StoreId"] == STORE

    await hub.post(
        "user", prospect_xml("R-1", owner="S-17", lead_source="walk-in", firstname="Augusta")
    )

    async def updated() -> bool:
        return fake.users.get(record, {}).get("FirstName") == "Augusta"

    await eventually(updated, within=20)
    assert fake.creates == {record: 1}
    user_id = fake.partner_ids[record]
    writes = [(r.method, r.path) for r in fake.requests if r.method in ("POST", "PUT")]
    assert writes == [
        ("POST", "/api/current/users/prospect"),
        ("PUT", f"/api/current/users/{user_id}"),
    ]

    async def both() -> list[tuple[Any, ...]]:
        rows = await attempts(hub)
        return rows if len(rows) == 2 else []

    create, update = await eventually(both)
    assert create[:2] == ("delivered", None)
    assert list(update[3]) == [
        "ownerID not sent: ClubReady's user update has no AssignToId",
        "leadSource not sent: ClubReady's user update has no ReferralTypeId",
    ]


async def test_unknown_owner_and_lead_source_go_without(start_hub: StartHub) -> None:
    hub = await start_hub([clubready_partner()])
    fake = fake_of(hub)
    fake.add_referral_type(STORE, "Walk-In")
    await hub.post("staff", staff_xml("S-9", "nobody@example.com"))
    await hub.post("user", prospect_xml("R-1", owner="S-9", lead_source="Radio"))
    [user] = await fake.wait_for_users(1, timeout=20)
    assert "AssignToId" not in user
    assert "ReferralTypeId" not in user

    async def gaps() -> list[tuple[Any, ...]]:
        rows = await hub.pool.fetch("SELECT partner, kind, key FROM mapping_gaps ORDER BY id")
        return [tuple(r) for r in rows] if len(rows) == 2 else []

    assert await eventually(gaps) == [
        ("clubready", "staff", "nobody@example.com"),
        ("clubready", "leadsource", "radio"),
    ]


async def test_success_false_for_a_validation_is_a_dead_letter_with_the_message(
    start_hub: StartHub,
) -> None:
    hub = await start_hub([clubready_partner()])
    fake = fake_of(hub)
    fake.refuse_saves(1, "Invalid ReferralTypeId 7 for this store")
    record = await hub.post("user", prospect_xml("R-1"))

    row = await dead_letter(hub)
    assert (row["partner"], str(row["uuid"])) == ("clubready", record)
    assert "Success false" in row["reason"]
    assert "Invalid ReferralTypeId 7 for this store" in row["reason"]
    [(outcome, status, answer, _)] = await attempts(hub)
    assert (outcome, status) == ("permanent", 200)
    assert answer == '{"Success":false,"Message":"Invalid ReferralTypeId 7 for this store"}'
    assert fake.users == {}


async def test_success_false_that_says_later_is_retried_and_delivered_once(
    start_hub: StartHub,
) -> None:
    hub = await start_hub([clubready_partner()])
    fake = fake_of(hub)
    fake.refuse_saves(1, "Server busy, please try again")
    record = await hub.post("user", prospect_xml("R-1"))

    await fake.wait_for_users(1, timeout=20)

    async def settled() -> list[tuple[Any, ...]]:
        rows = await attempts(hub)
        return rows if rows and rows[-1][0] == "delivered" else []

    rows = await eventually(settled, within=20)
    assert [row[:2] for row in rows] == [("transient", 200), ("delivered", None)]
    assert "Server busy, please try again" in rows[0][2]
    assert fake.creates == {record: 1}
    assert await hub.pool.fetchval("SELECT count(*) FROM dead_letters") == 0

    async def stored() -> str | None:
        return await hub.pool.fetchval(  # type: ignore[no-any-return]
            "SELECT partner_id FROM deliveries WHERE partner = 'clubready' AND uuid = $1",
            uuid.UUID(record),
        )

    assert await eventually(stored) == fake.partner_ids[record]


async def test_a_wrong_api_key_is_a_dead_letter(
    start_hub: StartHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_TEST_CLUBREADY_WRONG_KEY", "not-the-key")
    hub = await start_hub([clubready_partner("HUB_TEST_CLUBREADY_WRONG_KEY")])
    await hub.post("user", prospect_xml("R-1"))
    row = await dead_letter(hub)
    assert "answered 401" in row["reason"]
    assert "Access denied: invalid ApiKey" in row["reason"]
    assert "not-the-key" not in row["reason"]
    assert fake_of(hub).users == {}
