"""A hub with fake partners: ingress, router and delivery in the test's loop.

Each test declares its partners (FakeGenericJson servers) and their tenancy
entries; `DeliveryHub` starts the fakes, writes the tenancy around their
URLs, and runs the hub's components in a fresh namespace with delay tiers of
1 and 2 seconds, so that retries through the tiers take seconds, not hours.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest

from adapters.fakes.generic_json import FakeGenericJson
from adapters.fakes.server import FakeServer
from hub.broker.topology import Topology
from hub.delivery.service import DeliveryService
from hub.ingress.app import BASE, IngressService
from hub.router import RouterService
from hub.settings import Settings
from hub.store.pool import Pool
from hub.tenancy import Tenancy, parse
from hub.wiring import topology
from tests.conftest import AMQP_URL, delete_topology
from tests.fixtures_tenancy import ENV, INTOUCH_ID, INTOUCH_KEY, TENANCY_TOML

TOKEN = "partner-token"
AUTH = {"Authorization": f"Bearer {INTOUCH_KEY}", "Content-Type": "application/xml"}


@dataclass
class Partner:
    """A receiving partner: its fake server and its tenancy entries.

    By default a generic_json partner; another adapter comes with its fake
    (`make_fake`) and its provider settings (`settings`, TOML inline table).
    """

    name: str
    capabilities: list[str]
    receives: list[str] = field(default_factory=lambda: ["PROSPECT", "MEMBER", "FORMER_MEMBER"])
    extras: list[str] = field(default_factory=lambda: ["owner", "lead_source", "trial"])
    max_attempts: int = 3
    rate_per_second: float | None = None
    adapter: str = "generic_json"
    settings: str = '{ key_env = "HUB_TEST_PARTNER_TOKEN", timeout = 2 }'
    make_fake: Callable[[], FakeServer] = lambda: FakeGenericJson(TOKEN)
    fake: FakeServer | None = None

    def toml(self, url: str) -> str:
        return f"""
[[provider]]
name = "{self.name}"
identifier = "{self.name}-identifier"
key_sha256 = "{hashlib.sha256(self.name.encode()).hexdigest()}"
adapter = "{self.adapter}"
url = "{url}"
capabilities = {self.capabilities!r}
settings = {self.settings}
max_attempts = {self.max_attempts}
concurrency = 4
""" + (f"rate_per_second = {self.rate_per_second}\n" if self.rate_per_second else "")


ALL = ["user.save", "staff.list", "staff.find_by_email", "leadsource.list", "leadsource.create"]


class DeliveryHub:
    def __init__(self, settings: Settings, partners: list[Partner], **overrides: Any) -> None:
        self.settings = replace(
            settings, **{"retry_tiers": (1, 2), "breaker_cooldown": 1.0, **overrides}
        )
        self.partners = {p.name: p for p in partners}
        self.url = ""
        self.tenancy: Tenancy | None = None
        self.tenancy_file = Path()
        # The folder this hub made for its tenancy file; None until made. Never derived
        # from `tenancy_file`: before the file is written that is Path(), the working
        # directory, and removing its parent would remove the checkout.
        self._scratch: Path | None = None
        self._components: list[Any] = []

    def fake(self, name: str) -> FakeGenericJson:
        """A generic_json partner's fake."""
        fake = self.partners[name].fake
        assert isinstance(fake, FakeGenericJson)
        return fake

    def server(self, name: str) -> FakeServer:
        """Any partner's fake."""
        fake = self.partners[name].fake
        assert fake is not None
        return fake

    @property
    def pool(self) -> Pool:
        router = self._components[0]
        assert router.pool is not None
        return router.pool  # type: ignore[no-any-return]

    async def __aenter__(self) -> DeliveryHub:
        text = TENANCY_TOML.split("  [[client.subscription]]")[0]  # acme, its clubs
        downtown = '  ids.clubos = { client = "A1", club = "77" }\n'
        for partner in self.partners.values():
            partner.fake = partner.make_fake()
            url = await partner.fake.start()
            text = partner.toml(url) + text.replace(
                downtown,
                downtown + f'  ids.{partner.name} = {{ client = "C-{partner.name}",'
                f' club = "K-{partner.name}" }}\n',
            )
        for p in self.partners.values():
            text += (
                f"  [[client.subscription]]\n  provider = {p.name!r}\n"
                f"  receives = {p.receives!r}\n  with = {p.extras!r}\n"
            )
        self.tenancy = parse(tomllib.loads(text), ENV)
        # The same tenancy as a file, for the `hub` command run against this hub.
        self._scratch = Path(tempfile.mkdtemp(prefix="hub-test-"))
        self.tenancy_file = self._scratch / "tenancy.toml"
        self.tenancy_file.write_text(text)
        self._components = [
            RouterService(self.settings, self.tenancy),
            DeliveryService(self.settings, self.tenancy),
            IngressService(self.settings, self.tenancy),
        ]
        for component in self._components:
            await component.start()
        self.url = f"http://127.0.0.1:{self._components[2].port}{BASE}"
        await _declared(topology(self.settings, self.tenancy))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for component in reversed(self._components):
            await component.stop()
        self._components = []
        for partner in self.partners.values():
            if partner.fake is not None:
                await partner.fake.stop()
        if self.tenancy is not None:  # the partners' queues and tiers too
            await delete_topology(AMQP_URL, topology(self.settings, self.tenancy))
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    async def post(self, endpoint: str, body: bytes, *, key: str = INTOUCH_KEY) -> str:
        """Save as intouch, or as the provider whose key is given (a partner's key is its name)."""
        headers = {**AUTH, "Authorization": f"Bearer {key}"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.url}/{endpoint}", data=body, headers=headers) as r,
        ):
            text = await r.text()
            assert r.status == 200, text
            return text.split("<uuid>")[1].split("<")[0]


async def _declared(shape: Topology, within: float = 10.0) -> None:
    """Once every queue exists: the consumers declare them as they connect, after start."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        for queue in shape.queues():
            async with asyncio.timeout(within):
                while True:
                    channel = await connection.channel()
                    try:
                        await channel.declare_queue(queue.name, passive=True)
                        break
                    except aio_pika.exceptions.ChannelClosed:
                        await asyncio.sleep(0.05)
                    finally:
                        if not channel.is_closed:
                            await channel.close()


@pytest.fixture
def partner_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_TEST_PARTNER_TOKEN", TOKEN)


StartHub = Callable[..., Awaitable[DeliveryHub]]


@pytest.fixture
async def start_hub(settings: Settings, partner_env: None) -> AsyncIterator[StartHub]:
    hubs: list[DeliveryHub] = []

    async def start(partners: list[Partner], **overrides: Any) -> DeliveryHub:
        hub = DeliveryHub(settings, partners, **overrides)
        hubs.append(hub)
        return await hub.__aenter__()

    yield start
    for hub in hubs:
        await hub.__aexit__()


def staff_xml(record_id: str, email: str) -> bytes:
    return f"""<user><providerInfo><identifier>{INTOUCH_ID}</identifier><clientID>456</clientID>
<clubID>123</clubID><recordID>{record_id}</recordID></providerInfo><userInfo>
<firstname>Sam</firstname><lastname>Staff</lastname><userStatus>ACTIVE</userStatus>
<userType>STAFF</userType><email>{email}</email></userInfo></user>""".encode()


def prospect_xml(
    record_id: str,
    *,
    identifier: str = INTOUCH_ID,
    client_id: str = "456",
    club_id: str = "123",
    owner: str | None = None,
    lead_source: str | None = None,
    user_type: str = "PROSPECT",
    status: str = "ACTIVE",
    firstname: str = "Ada",
) -> bytes:
    lead = ""
    if owner or lead_source:
        lead = "<leadInfo>"
        lead += f"<leadSource>{lead_source}</leadSource>" if lead_source else ""
        lead += f"<ownerID>{owner}</ownerID>" if owner else ""
        lead += "<trialStart>2026-11-01</trialStart></leadInfo>"
    return f"""<user><providerInfo><identifier>{identifier}</identifier>
<clientID>{client_id}</clientID><clubID>{club_id}</clubID><recordID>{record_id}</recordID></providerInfo><userInfo>
<firstname>{firstname}</firstname><lastname>Lovelace</lastname><userStatus>{status}</userStatus>
<userType>{user_type}</userType><email>ada@example.com</email></userInfo>{lead}</user>""".encode()
