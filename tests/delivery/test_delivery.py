"""Delivery end to end: post XML at the ingress, watch fake partners receive it."""

from __future__ import annotations

import asyncio
import time

from hub.delivery import job
from tests.conftest import eventually
from tests.delivery.conftest import ALL, DeliveryHub, Partner, StartHub, prospect_xml, staff_xml


async def received(hub: DeliveryHub, partner: str, count: int = 1) -> list[dict]:  # type: ignore[type-arg]
    fake = hub.fake(partner)

    async def enough() -> bool:
        return len(fake.users) >= count

    await eventually(enough, within=20)
    return list(fake.users.values())


async def gaps(hub: DeliveryHub) -> list[tuple[str, str, str, int]]:
    rows = await hub.pool.fetch("SELECT partner, kind, key, count FROM mapping_gaps ORDER BY id")
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_owner_and_lead_source_matched_from_the_lists(start_hub: StartHub) -> None:
    hub = await start_hub([Partner("crm", ALL)])
    fake = hub.fake("crm")
    staff_id = fake.add_staff("K-crm", " Sam.Staff@Example.com ")
    source_id = fake.add_lead_source("K-crm", "Walk-In")
    await hub.post("staff", staff_xml("S-17", "sam.staff@example.COM"))
    await hub.post("user", prospect_xml("R-1", owner="S-17", lead_source="walk-in"))

    [user] = await received(hub, "crm")
    assert user["ownerId"] == staff_id
    assert user["leadSourceId"] == source_id
    assert user["firstName"] == "Ada"
    assert user["trialStart"] == "2026-11-01"
    assert await gaps(hub) == []


async def test_owner_found_by_email_when_the_partner_cannot_list(start_hub: StartHub) -> None:
    hub = await start_hub([Partner("crm", ["user.save", "staff.find_by_email"])])
    staff_id = hub.fake("crm").add_staff("K-crm", "sam@example.com")
    await hub.post("staff", staff_xml("S-1", "SAM@example.com"))
    await hub.post("user", prospect_xml("R-1", owner="S-1"))
    [user] = await received(hub, "crm")
    assert user["ownerId"] == staff_id


async def test_unknown_owner_and_lead_source_go_without_and_leave_gaps(
    start_hub: StartHub,
) -> None:
    hub = await start_hub([Partner("crm", ["user.save", "staff.list", "leadsource.list"])])
    await hub.post("staff", staff_xml("S-9", "nobody@example.com"))
    await hub.post("user", prospect_xml("R-1", owner="S-9", lead_source="Radio"))
    [user] = await received(hub, "crm")
    assert "ownerId" not in user
    assert "leadSourceId" not in user

    async def both() -> bool:
        return len(await gaps(hub)) == 2

    await eventually(both)
    assert await gaps(hub) == [
        ("crm", "staff", "nobody@example.com", 1),
        ("crm", "leadsource", "radio", 1),
    ]


async def test_a_lead_source_is_created_once_and_reused(start_hub: StartHub) -> None:
    hub = await start_hub([Partner("crm", ALL)])
    fake = hub.fake("crm")
    await hub.post("user", prospect_xml("R-1", lead_source="Billboard"))
    await received(hub, "crm")
    await hub.post("user", prospect_xml("R-2", lead_source="BILLBOARD"))
    users = await received(hub, "crm", 2)
    assert len({u["leadSourceId"] for u in users}) == 1
    created = [r for r in fake.requests if r.method == "POST" and "lead-sources" in r.path]
    assert len(created) == 1


async def test_the_hub_is_master_of_a_partner_that_can_only_create(start_hub: StartHub) -> None:
    hub = await start_hub([Partner("crm", ["user.save", "leadsource.create"])])
    fake = hub.fake("crm")
    await asyncio.gather(
        *(hub.post("user", prospect_xml(f"R-{n}", lead_source="Facebook")) for n in range(5))
    )
    users = await received(hub, "crm", 5)
    assert len({u["leadSourceId"] for u in users}) == 1
    assert len([r for r in fake.requests if r.method == "POST"]) == 1


async def test_extras_and_receives_follow_the_subscription(start_hub: StartHub) -> None:
    hub = await start_hub(
        [
            Partner("bare", ALL, extras=[]),
            Partner("prospects", ALL, receives=["PROSPECT"]),
        ]
    )
    hub.fake("bare").add_staff("K-bare", "sam@example.com")
    await hub.post("staff", staff_xml("S-1", "sam@example.com"))
    await hub.post("user", prospect_xml("R-1", owner="S-1", lead_source="Radio"))
    await hub.post("user", prospect_xml("M-1", user_type="MEMBER"))
    users = await received(hub, "bare", 2)
    assert all("ownerId" not in u and "leadSourceId" not in u for u in users)
    assert all("trialStart" not in u for u in users)
    [prospect] = await received(hub, "prospects")
    assert prospect["userType"] == "PROSPECT"
    await asyncio.sleep(0.5)
    assert len(hub.fake("prospects").users) == 1


async def test_an_update_after_a_create_is_an_update(start_hub: StartHub) -> None:
    hub = await start_hub([Partner("crm", ALL)])
    fake = hub.fake("crm")
    record = await hub.post("user", prospect_xml("R-1"))
    await received(hub, "crm")
    await hub.post("user", prospect_xml("R-1", firstname="Augusta"))

    async def updated() -> bool:
        return fake.users.get(record, {}).get("firstName") == "Augusta"

    await eventually(updated)
    assert fake.creates[record] == 1
    await hub.post("user", prospect_xml("R-1", firstname="Augusta"))  # identical: no delivery
    await asyncio.sleep(0.5)
    assert len([r for r in fake.requests if r.method == "PUT"]) == 2


async def test_500_then_200_is_delivered_once(start_hub: StartHub) -> None:
    hub = await start_hub([Partner("crm", ["user.save"])])
    fake = hub.fake("crm")
    fake.fail_next(1, status=500)
    record = await hub.post("user", prospect_xml("R-1"))
    await received(hub, "crm")
    assert fake.creates[record] == 1

    async def both() -> list[tuple[str, int | None]]:  # the row is written after the call
        rows = await hub.pool.fetch(
            "SELECT outcome, status FROM delivery_attempts WHERE partner = 'crm' ORDER BY id"
        )
        return [tuple(r) for r in rows] if len(rows) >= 2 else []  # type: ignore[misc]

    assert await eventually(both) == [("transient", 500), ("delivered", None)]


async def test_429_retry_after_is_honoured(start_hub: StartHub) -> None:
    hub = await start_hub([Partner("crm", ["user.save"])])
    fake = hub.fake("crm")
    fake.fail_next(1, status=429, retry_after=1.5)
    started = time.monotonic()
    await hub.post("user", prospect_xml("R-1"))
    await received(hub, "crm")
    assert time.monotonic() - started >= 1.5


async def test_400_is_dead_lettered_at_once_with_the_answer(start_hub: StartHub) -> None:
    hub = await start_hub([Partner("crm", ["user.save"])])
    hub.fake("crm").fail_next(1, status=400, body='{"error": "lastName is too long"}')
    record = await hub.post("user", prospect_xml("R-1"))

    async def kept() -> list:  # type: ignore[type-arg]
        return await hub.pool.fetch("SELECT partner, uuid, reason FROM dead_letters")

    [row] = await eventually(kept)
    assert (row["partner"], str(row["uuid"])) == ("crm", record)
    assert "400" in row["reason"]
    answer = await hub.pool.fetchval("SELECT answer FROM delivery_attempts WHERE partner = 'crm'")
    assert "lastName is too long" in answer
    assert hub.fake("crm").users == {}


async def test_a_partner_down_past_the_quick_retries_gets_it_from_a_delay_tier(
    start_hub: StartHub,
) -> None:
    hub = await start_hub([Partner("crm", ["user.save"], max_attempts=5)])
    fake = hub.fake("crm")
    fake.down = True
    record = await hub.post("user", prospect_xml("R-1"))

    async def tried_and_delayed() -> bool:
        attempts = await hub.pool.fetchval("SELECT max(attempt) FROM delivery_attempts")
        return bool(attempts and attempts >= 2)

    await eventually(tried_and_delayed, within=40)
    fake.down = False
    await received(hub, "crm")
    assert fake.creates[record] == 1


async def test_max_attempts_reached_is_a_dead_letter(start_hub: StartHub) -> None:
    hub = await start_hub([Partner("crm", ["user.save"], max_attempts=2)])
    hub.fake("crm").down = True
    await hub.post("user", prospect_xml("R-1"))

    async def kept() -> str | None:
        return await hub.pool.fetchval("SELECT reason FROM dead_letters")  # type: ignore[no-any-return]

    reason = await eventually(kept, within=60)
    assert "gave up after 2 attempts" in reason


async def test_two_way_sync_without_echo_or_duplicate(start_hub: StartHub) -> None:
    hub = await start_hub([Partner("alpha", ALL), Partner("beta", ALL)])
    record = await hub.post("user", prospect_xml("R-1"))
    await received(hub, "alpha")
    await received(hub, "beta")
    beta = hub.fake("beta")
    beta_id = beta.partner_ids[record]

    async def hub_knows_beta_id() -> bool:
        # "The hub created a record at B and knows B's ID for it": the fake has the record
        # a moment before the delivery worker commits the ID.
        found = await hub.pool.fetchval(
            "SELECT partner_id FROM deliveries WHERE partner = 'beta' AND uuid = $1", record
        )
        return bool(found == beta_id)

    await eventually(hub_knows_beta_id, within=20)

    # beta sends the same person back as its own record, changed.
    await hub.post(
        "user",
        prospect_xml(
            beta_id,
            identifier="beta-identifier",
            client_id="C-beta",
            club_id="K-beta",
            firstname="Augusta",
        ),
        key="beta",
    )
    alpha = hub.fake("alpha")

    async def alpha_updated() -> bool:
        return alpha.users.get(record, {}).get("firstName") == "Augusta"

    await eventually(alpha_updated, within=30)
    await asyncio.sleep(0.5)
    assert alpha.creates[record] == 1
    assert len(alpha.users) == 1
    assert [r.method for r in beta.requests if r.method == "PUT"] == ["PUT"]  # no echo
    assert await hub.pool.fetchval("SELECT count(*) FROM records WHERE kind = 'user'") == 1
    assert await hub.pool.fetchval("SELECT version FROM records") == 2


async def test_records_saved_together_fail_and_succeed_each_on_its_own(
    start_hub: StartHub,
) -> None:
    # Saved at once, they share inbox messages and job messages; two get a 400.
    hub = await start_hub([Partner("crm", ["user.save"])])
    fake = hub.fake("crm")
    fake.fail_next(2, status=400, body='{"error": "no"}')
    posted = await asyncio.gather(*(hub.post("user", prospect_xml(f"R-{n}")) for n in range(8)))
    await received(hub, "crm", 6)

    async def kept() -> list:  # type: ignore[type-arg]
        rows = await hub.pool.fetch("SELECT uuid, body FROM dead_letters")
        return rows if len(rows) == 2 else []

    dead = await eventually(kept)
    assert {str(r["uuid"]) for r in dead} | set(fake.users) == set(posted)
    assert all(len(job.decode(r["body"])) == 1 for r in dead)
    await asyncio.sleep(0.5)
    assert sorted(fake.creates.values()) == [1] * 6
