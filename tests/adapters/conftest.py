"""Adapters against their fake partners, over real HTTP on 127.0.0.1.

Neither RabbitMQ nor PostgreSQL is needed here. `partner` runs a test once
per adapter (each against its own fake), for what the two must do alike:
the error classes, timeouts, refused connections.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest

from adapters.base import Adapter, Capability, ClubRef, OutboundUser, PartnerConfig
from adapters.connector_xml import ConnectorXmlAdapter
from adapters.fakes.connector_xml import FakeConnectorPartner
from adapters.fakes.generic_json import FakeGenericJson
from adapters.fakes.server import FakeServer
from adapters.generic_json import GenericJsonAdapter

TOKEN = "partner-token"
IDENTIFIER = "hub-at-partner"
ENV = {"PARTNER_KEY": TOKEN}
CLUB = ClubRef("C-1", "K-1")
HUB_UUID = uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")
CONNECTOR_ONLY = frozenset(
    {
        Capability.USER_SAVE,
        Capability.STAFF_LIST,
        Capability.LEADSOURCE_LIST,
        Capability.LEADSOURCE_CREATE,
    }
)


def outbound(**changes: Any) -> OutboundUser:
    """A prospect with only the mandatory fields and an email, changed as asked."""
    user = OutboundUser(
        hub_uuid=HUB_UUID,
        partner_id=None,
        user_type="PROSPECT",
        status="ACTIVE",
        firstname="Ada",
        lastname="Lovelace",
        email="ada@example.com",
        idempotency_key=f"{HUB_UUID}:crm:1",
    )
    return replace(user, **changes)


def config(
    url: str,
    capabilities: frozenset[Capability] = frozenset(Capability),
    env: dict[str, str] | None = None,
    **settings: Any,
) -> PartnerConfig:
    return PartnerConfig(
        name="crm",
        url=url,
        capabilities=capabilities,
        settings={"key_env": "PARTNER_KEY", "timeout": 2, **settings},
        env=ENV if env is None else env,
    )


def json_adapter(url: str, session: aiohttp.ClientSession, **settings: Any) -> GenericJsonAdapter:
    return GenericJsonAdapter(config(url, **settings), session)


def xml_adapter(url: str, session: aiohttp.ClientSession, **settings: Any) -> ConnectorXmlAdapter:
    settings.setdefault("identifier", IDENTIFIER)
    return ConnectorXmlAdapter(config(url, CONNECTOR_ONLY, **settings), session)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def json_fake() -> AsyncIterator[FakeGenericJson]:
    fake = FakeGenericJson(TOKEN)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def xml_fake() -> AsyncIterator[FakeConnectorPartner]:
    fake = FakeConnectorPartner(TOKEN, IDENTIFIER)
    await fake.start()
    yield fake
    await fake.stop()


@dataclass
class Partner:
    """One adapter shape against its fake; `build` makes the adapter with other settings."""

    fake: FakeServer
    build: Callable[..., Adapter]

    @property
    def adapter(self) -> Adapter:
        return self.build()


@pytest.fixture(params=["generic_json", "connector_xml"])
async def partner(
    request: pytest.FixtureRequest, session: aiohttp.ClientSession
) -> AsyncIterator[Partner]:
    fake: FakeServer
    if request.param == "generic_json":
        fake = FakeGenericJson(TOKEN)
        maker: Callable[..., Adapter] = json_adapter
    else:
        fake = FakeConnectorPartner(TOKEN, IDENTIFIER)
        maker = xml_adapter
    url = await fake.start()
    yield Partner(fake, lambda **settings: maker(url, session, **settings))
    await fake.stop()
