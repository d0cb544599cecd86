"""ABC DataTrak end to end: prospects posted at the ingress arrive at a fake DataTrak club.

The partner `abc` receives prospects only, with the owner (no lead sources:
DataTrak has none to give), its club number being "K-abc".
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from adapters.fakes.abc_datatrak import FakeAbcDataTrak
from tests.conftest import eventually
from tests.delivery.conftest import (
    TOKEN,
    DeliveryHub,
    Partner,
    StartHub,
    prospect_xml,
    staff_xml,
)

CLUB = "K-abc"


def abc_partner() -> Partner:
    return Partner(
        "abc",
        ["user.save", "staff.list"],
        receives=["PROSPECT"],
        extras=["owner", "trial"],
        adapter="abc_datatrak",
        make_fake=lambda: FakeAbcDataTrak("hub-app", TOKEN),
        settings='{ app_id = "hub-app", key_env = "HUB_TEST_PARTNER_TOKEN", timeout = 2 }',
    )


def fake_of(hub: DeliveryHub) -> FakeAbcDataTrak:
    fake = hub.server("abc")
    assert isinstance(fake, FakeAbcDataTrak)
    return fake


async def prospects(fake: FakeAbcDataTrak, count: int = 1) -> list[dict[str, Any]]:
    return await fake.wait_for_users(count, timeout=20)


async def notes_of(hub: DeliveryHub, record: str) -> list[list[str]]:
    rows = await hub.pool.fetch(
        "SELECT notes FROM delivery_attempts WHERE partner = 'abc' AND uuid = $1"
        " AND outcome = 'delivered' ORDER BY id",
        uuid.UUID(record),
    )
    return [list(row["notes"]) for row in rows]


async def test_a_prospect_is_created_truncated_with_its_owner_then_updated(
    start_hub: StartHub,
) -> None:
    hub = await start_hub([abc_partner()])
    fake = fake_of(hub)
    sam = fake.add_staff(CLUB, " Sam.Staff@Example.com ", "Sam", "Staff")
    await hub.post("staff", staff_xml("S-17", "sam.staff@example.COM"))
    long_name = "Alexandrina-Victoria!!"  # 22 characters; DataTrak takes 15
    record = await hub.post("user", prospect_xml("R-1", owner="S-17", firstname=long_name))

    [prospect] = await prospects(fake)
    assert prospect["firstName"] == "Alexandrina-Vic"
    assert prospect["salesPersonId"] == sam
    assert prospect["email"] == "ada@example.com"
    assert fake.creates == {"ada@example.com": 1}

    async def noted() -> list[list[str]]:
        return await notes_of(hub, record)

    [notes] = await eventually(noted)
    assert "firstName truncated from 22 to 15 characters" in notes
    assert "trialStart not sent: DataTrak's prospect has no such field" in notes

    await hub.post("user", prospect_xml("R-1", owner="S-17", firstname="Augusta"))

    async def updated() -> bool:
        return prospect["memberId"] in fake.users and (
            fake.users[prospect["memberId"]]["firstName"] == "Augusta"
        )

    await eventually(updated, within=20)
    assert fake.creates == {"ada@example.com": 1}
    assert len(fake.users) == 1
    posts = [r.path for r in fake.requests if r.method == "POST"]
    assert posts == [f"/ws/insertProspect/{CLUB}", f"/ws/updateProspect/{CLUB}"]

    async def both_written() -> list[list[str]]:  # the partner has it before the hub notes it
        notes = await notes_of(hub, record)
        return notes if len(notes) >= 2 else []

    assert (await eventually(both_written))[-1] == [
        "trialStart not sent: DataTrak's prospect has no such field"
    ]


async def test_members_never_go_and_an_unknown_owner_goes_without(start_hub: StartHub) -> None:
    hub = await start_hub([abc_partner()])
    fake = fake_of(hub)
    await hub.post("staff", staff_xml("S-9", "nobody@example.com"))
    await hub.post("user", prospect_xml("M-1", user_type="MEMBER"))
    await hub.post("user", prospect_xml("M-2", user_type="MEMBER", status="INACTIVE"))
    await hub.post("user", prospect_xml("R-1", owner="S-9"))

    [prospect] = await prospects(fake)
    assert "salesPersonId" not in prospect
    await asyncio.sleep(0.5)
    assert len(fake.users) == 1
    assert [r.path for r in fake.requests if r.method == "POST"] == [f"/ws/insertProspect/{CLUB}"]
    gaps = await hub.pool.fetch("SELECT partner, kind, key FROM mapping_gaps")
    assert [tuple(g) for g in gaps] == [("abc", "staff", "nobody@example.com")]
