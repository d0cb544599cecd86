"""Shared fixtures: a namespace of its own per test, on the real broker and database.

Every test that touches RabbitMQ or PostgreSQL gets a fresh namespace (queue
prefix and PostgreSQL schema) and removes it afterwards. The services are the
machine's (`HUB_TEST_AMQP_URL`, `HUB_TEST_DATABASE_URL` to point elsewhere).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import aio_pika
import aiohttp
import pytest

from hub.broker.topology import Topology
from hub.ingress.app import BASE, IngressService
from hub.router import RouterService
from hub.settings import Address, Settings
from hub.store.migrate import drop, migrate
from hub.tenancy import Tenancy, parse
from tests.fixtures_tenancy import ENV, TENANCY_TOML

AMQP_URL = os.environ.get("HUB_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
DATABASE_URL = os.environ.get("HUB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/hub")


@pytest.fixture(scope="session", autouse=True)
def machine_broker_answers_at_the_end(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a session that stopped and started the machine's broker (marker
    `broker_restart`): that broker answers again, or the session ends in an error."""
    yield
    if not any(item.get_closest_marker("broker_restart") for item in request.session.items):
        return
    from tests.machine_broker import OWNS_BROKER, answers  # it imports this module

    if OWNS_BROKER:
        assert asyncio.run(answers()), (
            "the machine's RabbitMQ does not answer after the broker_restart tests: "
            "`rabbitmqctl start_app` (as root) brings it back"
        )


@pytest.fixture
def namespace() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def tenancy_file(tmp_path: Path) -> Path:
    path = tmp_path / "tenancy.toml"
    path.write_text(TENANCY_TOML)
    return path


@pytest.fixture
def tenancy() -> Tenancy:
    import tomllib

    return parse(tomllib.loads(TENANCY_TOML), ENV)


@pytest.fixture
async def settings(namespace: str, tenancy_file: Path) -> AsyncIterator[Settings]:
    settings = Settings(
        amqp_urls=(AMQP_URL,),
        database_url=DATABASE_URL,
        tenancy_file=tenancy_file,
        namespace=namespace,
        ingress_addr=Address("127.0.0.1", 0),
        publish_timeout=3.0,
        shutdown_grace=5.0,
    )
    await migrate(DATABASE_URL, namespace)
    try:
        yield settings
    finally:
        await drop(DATABASE_URL, namespace)
        await delete_topology(AMQP_URL, Topology(namespace))


async def delete_topology(url: str, topology: Topology) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for queue in topology.queues():
            await channel.queue_delete(queue.name)
        for exchange in topology.exchanges():
            await channel.exchange_delete(exchange.name)


class Hub:
    """The ingress and router running in the test's event loop, on a free port."""

    def __init__(self, settings: Settings, tenancy: Tenancy) -> None:
        self.settings = settings
        self.ingress = IngressService(settings, tenancy)
        self.router = RouterService(settings, tenancy)
        self.url = ""

    async def __aenter__(self) -> Hub:
        await self.router.start()
        await self.ingress.start()
        self.url = f"http://127.0.0.1:{self.ingress.port}{BASE}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ingress.stop()
        await self.router.stop()


@pytest.fixture
async def hub(settings: Settings, tenancy: Tenancy) -> AsyncIterator[Hub]:
    async with Hub(settings, tenancy) as running:
        yield running


@pytest.fixture
async def channel() -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    """A channel on the test broker, for tests that publish or read queues themselves."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        yield await connection.channel()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def eventually(probe, within: float = 10.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """Call `probe` until it returns something truthy; fail after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {within} s: {probe}")
        await asyncio.sleep(interval)


__all__ = ["Hub", "delete_topology", "eventually", "replace"]
