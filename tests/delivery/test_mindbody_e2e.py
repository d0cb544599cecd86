"""Mindbody end to end: people posted at the ingress arrive at a fake Mindbody site.

The partner `mb` lists staff and referral types (Mindbody has no lead-source
create); its site is "C-mb" and its location "K-mb" (not a number, so no
HomeLocation goes out, and a note says so).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from adapters.fakes.mindbody import FakeMindbody
from tests.conftest import eventually
from tests.delivery.conftest import TOKEN, DeliveryHub, Partner, StartHub, prospect_xml, staff_xml

SITE = "C-mb"
USERNAME, PASSWORD = "hub-staff", "mb-password"


@pytest.fixture(autouse=True)
def mindbody_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_TEST_MINDBODY_PASSWORD", PASSWORD)


def mindbody_partner(daily_quota: int = 1000, fake_quota: int = 1000) -> Partner:
    return Partner(
        "mb",
        ["user.save", "staff.list", "leadsource.list"],
        adapter="mindbody",
        make_fake=lambda: FakeMindbody(TOKEN, USERNAME, PASSWORD, daily_quota=fake_quota),
        settings=f'{{ key_env = "HUB_TEST_PARTNER_TOKEN", username = "{USERNAME}",'
        f' password_env = "HUB_TEST_MINDBODY_PASSWORD", daily_quota = {daily_quota},'
        " timeout = 2 }",
    )


def fake_of(hub: DeliveryHub) -> FakeMindbody:
    fake = hub.server("mb")
    assert isinstance(fake, FakeMindbody)
    return fake


async def attempts(hub: DeliveryHub, record: str, count: int = 1) -> list[dict[str, Any]]:
    """The record's attempts at mb, once there are `count` (they are written after the call)."""

    async def written() -> list[dict[str, Any]]:
        rows = await _attempts(hub, record)
        return rows if len(rows) >= count else []

    return await eventually(written, within=20)  # type: ignore[no-any-return]


async def _attempts(hub: DeliveryHub, record: str) -> list[dict[str, Any]]:
    rows = await hub.pool.fetch(
        "SELECT outcome, status, error, notes FROM delivery_attempts"
        " WHERE partner = 'mb' AND uuid = $1 ORDER BY id",
        uuid.UUID(record),
    )
    return [dict(row) for row in rows]


async def test_created_with_its_sales_rep_and_referral_then_updated(start_hub: StartHub) -> None:
    hub = await start_hub([mindbody_partner()])
    fake = fake_of(hub)
    sam = fake.add_staff(SITE, " Sam.Staff@Example.com ", "Sam", "Staff")
    fake.add_lead_source(SITE, "Walk-In")
    await hub.post("staff", staff_xml("S-17", "sam.staff@example.COM"))
    record = await hub.post("user", prospect_xml("R-1", owner="S-17", lead_source="walk-in"))

    [client] = await fake.wait_for_users(1, timeout=20)
    assert client["SalesReps"] == [{"Id": sam, "SalesRepNumber": 1}]
    assert client["ReferredBy"] == "Walk-In"
    assert (client["FirstName"], client["Email"], client["IsProspect"]) == (
        "Ada",
        "ada@example.com",
        True,
    )
    await hub.post("user", prospect_xml("R-1", owner="S-17", firstname="Augusta"))

    async def updated() -> bool:
        return client["Id"] in fake.users and fake.users[client["Id"]]["FirstName"] == "Augusta"

    await eventually(updated, within=20)
    assert fake.creates == {"ada@example.com": 1}
    assert len(fake.users) == 1
    saves = [r.path.rsplit("/", 1)[1] for r in fake.requests if r.method == "POST"]
    assert saves == ["issue", "addclient", "updateclient"]
    rows = await attempts(hub, record, 2)
    assert [r["outcome"] for r in rows] == ["delivered", "delivered"]
    assert "HomeLocation not sent: the location ID 'K-mb' is not a number" in rows[0]["notes"]
    assert "trialStart not sent: a Mindbody client has no such field" in rows[0]["notes"]


async def test_unknown_owner_and_referral_type_go_without(start_hub: StartHub) -> None:
    hub = await start_hub([mindbody_partner()])
    fake = fake_of(hub)
    fake.add_lead_source(SITE, "Walk-In")
    await hub.post("staff", staff_xml("S-9", "nobody@example.com"))
    record = await hub.post("user", prospect_xml("R-1", owner="S-9", lead_source="Radio"))

    [client] = await fake.wait_for_users(1, timeout=20)
    assert "SalesReps" not in client
    assert "ReferredBy" not in client

    async def gaps() -> list[tuple[str, str]]:
        rows = await hub.pool.fetch("SELECT kind, key FROM mapping_gaps WHERE partner = 'mb'")
        return sorted((r["kind"], r["key"]) for r in rows)

    assert await eventually(gaps) == [("leadsource", "radio"), ("staff", "nobody@example.com")]
    [row] = await attempts(hub, record)
    assert "lead source 'Radio' not sent: not a referral type of the site" in row["notes"]


async def test_the_daily_quota_stops_deliveries_before_mindbody_refuses(
    start_hub: StartHub,
) -> None:
    # 4 calls a day, one in reserve: the token, the staff list and the referral types
    # use up the three the adapter may make, so the search before the add is not sent.
    hub = await start_hub([mindbody_partner(daily_quota=4, fake_quota=4)])
    fake = fake_of(hub)
    await hub.post("staff", staff_xml("S-1", "sam@example.com"))
    record = await hub.post("user", prospect_xml("R-1", owner="S-1", lead_source="Radio"))

    first = (await attempts(hub, record))[0]
    assert (first["outcome"], first["status"]) == ("transient", None)
    assert "3 of the site's 4 calls today are made (keeping 1 in reserve)" in first["error"]
    await asyncio.sleep(0.5)
    assert fake.calls_today(SITE) == 3
    assert 429 not in [r.status for r in fake.requests]
    assert fake.users == {}
