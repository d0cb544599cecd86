"""The integration profiles of deploy/profiles/, each run as it is: the file loaded (its
partner's URL pointed at a fake), the hub started on it, Connector XML posted.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from adapters.fakes.abc_datatrak import FakeAbcDataTrak
from adapters.fakes.generic_json import FakeGenericJson
from adapters.fakes.server import FakeServer
from hub.delivery.service import DeliveryService
from hub.errors import ConfigError
from hub.ingress.app import BASE, IngressService
from hub.router import RouterService
from hub.settings import Settings
from hub.store.pool import Pool
from hub.tenancy import Tenancy, load
from hub.wiring import topology
from tests.conftest import AMQP_URL, delete_topology, eventually
from tests.delivery.conftest import prospect_xml, staff_xml

PROFILES = Path(__file__).parents[2] / "deploy" / "profiles"
SENDER_KEY = "profile-intouch-key"
SENDER_ID = "6f1c9a52-0b7e-4c57-9a53-2b1f0c4e8d11"
TOKEN = "profile-partner-token"


class ProfileHub:
    def __init__(self, url: str, tenancy: Tenancy, router: RouterService) -> None:
        self.url, self.tenancy, self._router = url, tenancy, router

    @property
    def pool(self) -> Pool:
        assert self._router.pool is not None
        return self._router.pool

    async def stored(self, record: str) -> None:
        """Once the router has stored the record (a staff record before the prospect it owns)."""

        async def there() -> bool:
            row = await self.pool.fetchval(
                "SELECT 1 FROM records WHERE uuid = $1", uuid.UUID(record)
            )
            return row is not None

        await eventually(there, within=20)

    async def post(self, endpoint: str, body: bytes) -> str:
        headers = {"Authorization": f"Bearer {SENDER_KEY}", "Content-Type": "application/xml"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.url}/{endpoint}", data=body, headers=headers) as answer,
        ):
            text = await answer.text()
            assert answer.status == 200, text
            return text.split("<uuid>")[1].split("<")[0]


@asynccontextmanager
async def profile_hub(
    settings: Settings, tmp_path: Path, profile: str, fake: FakeServer
) -> AsyncIterator[ProfileHub]:
    """The hub on deploy/profiles/PROFILE.toml, its one partner's URL pointed at `fake`."""
    url = await fake.start()
    text = re.sub(r'(?m)^url = ".*"$', f'url = "{url}"', (PROFILES / profile).read_text())
    path = tmp_path / profile
    path.write_text(text)
    tenancy = load(path)
    ours = replace(settings, tenancy_file=path, retry_tiers=(1, 2))
    components = [
        RouterService(ours, tenancy),
        DeliveryService(ours, tenancy),
        IngressService(ours, tenancy),
    ]
    try:
        for component in components:
            await component.start()
        router, ingress = components[0], components[2]
        assert isinstance(router, RouterService)
        assert isinstance(ingress, IngressService)
        yield ProfileHub(f"http://127.0.0.1:{ingress.port}{BASE}", tenancy, router)
    finally:
        for component in reversed(components):
            await component.stop()
        await fake.stop()
        await delete_topology(AMQP_URL, topology(ours, tenancy))


def prospect(record_id: str, **kwargs: str) -> bytes:
    return prospect_xml(record_id, identifier=SENDER_ID, client_id="900", club_id="901", **kwargs)


def staff(record_id: str, email: str) -> bytes:
    return (
        staff_xml(record_id, email)
        .replace(b"<clientID>456</clientID>", b"<clientID>900</clientID>")
        .replace(b"<clubID>123</clubID>", b"<clubID>901</clubID>")
    )


async def arrived(fake: FakeServer, record: str) -> dict:  # type: ignore[type-arg]
    async def there() -> bool:
        return record in fake.users

    await eventually(there, within=20)
    return fake.users[record]


async def test_paramount_owner_matched_lead_source_created_there(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARAMOUNT_TOKEN", TOKEN)
    fake = FakeGenericJson(TOKEN)
    staff_id = fake.add_staff("PM-17-01", "Sam@Example.com")
    async with profile_hub(settings, tmp_path, "paramount.toml", fake) as hub:
        await hub.stored(await hub.post("staff", staff("S-1", "sam@example.com")))
        record = await hub.post("user", prospect("R-1", owner="S-1", lead_source="Radio"))
        user = await arrived(fake, record)
        assert user["ownerId"] == staff_id
        [(source_id, name)] = fake.lead_sources["PM-17-01"].items()
        assert (user["leadSourceId"], name) == (source_id, "Radio")  # created at the partner
        assert user["trialStart"] == "2026-11-01"


async def test_jonas_i4_club_ids_only_no_staff_or_lead_source(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JONAS_TOKEN", TOKEN)
    fake = FakeGenericJson(TOKEN)
    async with profile_hub(settings, tmp_path, "jonas_i4.toml", fake) as hub:
        await hub.post("staff", staff("S-1", "sam@example.com"))
        record = await hub.post("user", prospect("R-1", owner="S-1", lead_source="Radio"))
        user = await arrived(fake, record)
        assert "ownerId" not in user
        assert "leadSourceId" not in user
        save = next(r for r in fake.requests if r.method == "PUT")
        assert save.path.startswith("/api/clubs/J-4-0001/users/")
        # Never asked for staff or lead sources.
        assert all(r.method == "PUT" for r in fake.requests)


async def test_abc_datatrak_prospects_only_owner_by_email_no_lead_source(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ABC_APP_KEY", TOKEN)
    fake = FakeAbcDataTrak("intouch-hub", TOKEN)
    sam = fake.add_staff("0417", "Sam@Example.com", "Sam", "Staff")
    async with profile_hub(settings, tmp_path, "abc_datatrak.toml", fake) as hub:
        await hub.stored(await hub.post("staff", staff("S-1", "sam@example.com")))
        await hub.post("user", prospect("R-1", owner="S-1", lead_source="Radio"))
        [user] = await fake.wait_for_users(1, timeout=20)
        assert user["clubNumber"] == "0417"
        assert user["salesPersonId"] == sam  # the owner, matched by email
        assert "leadSource" not in user
        # The employee list, the re-create check, the insert; never a lead source.
        assert [r.path.split("/")[2] for r in fake.requests] == [
            "getEmployeeList",
            "getMemberList",
            "insertProspect",
        ]
        assert await hub.pool.fetch("SELECT * FROM mapping_gaps") == []


async def test_abc_datatrak_refuses_members_at_start(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ABC_APP_KEY", TOKEN)
    text = (PROFILES / "abc_datatrak.toml").read_text()
    assert 'receives = ["PROSPECT"]' in text
    path = tmp_path / "abc_datatrak.toml"
    path.write_text(text.replace('receives = ["PROSPECT"]', 'receives = ["PROSPECT", "MEMBER"]'))
    delivery = DeliveryService(replace(settings, tenancy_file=path), load(path))
    with pytest.raises(ConfigError, match="takes prospects only and cannot receive MEMBER"):
        await delivery.start()
