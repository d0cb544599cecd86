"""The ingress's group commit against the real broker: who shares an inbox message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import aio_pika
import pytest

from hub.broker.connection import Nodes
from hub.broker.publisher import Publisher
from hub.broker.topology import INBOX, Topology
from hub.ingress.batcher import InboxBatcher
from hub.message import decode_batch
from tests.conftest import AMQP_URL, delete_topology
from tests.fixtures_tenancy import inbound

MakeBatcher = Callable[..., InboxBatcher]


@pytest.fixture
async def batcher(namespace: str) -> AsyncIterator[tuple[MakeBatcher, Topology]]:
    topology = Topology(namespace)
    publisher = Publisher(Nodes((AMQP_URL,)), topology, timeout=5, name="t-batcher")
    made: list[InboxBatcher] = []

    def make(**options: float) -> InboxBatcher:
        one = InboxBatcher(
            publisher,
            topology.inbox_exchange.name,
            INBOX,
            timeout=5,
            **options,  # type: ignore[arg-type]
        )
        one.start()
        made.append(one)
        return one

    try:
        yield make, topology
    finally:
        for one in made:
            await one.stop()
        await publisher.close()
        await delete_topology(AMQP_URL, topology)


async def inbox_messages(topology: Topology) -> list[list[str]]:
    """The record IDs of each message in the inbox, in order."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        queue = await (await connection.channel()).get_queue(topology.inbox.name)
        found = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            found.append([save.record_id for save in decode_batch(message.body)])
        return found


async def test_saves_within_the_linger_share_one_message(
    batcher: tuple[MakeBatcher, Topology],
) -> None:
    make, topology = batcher
    group = make(linger=0.5, enough=16)

    async def save_after(n: int) -> None:
        await asyncio.sleep(n * 0.01)
        await group.submit(inbound(f"R-{n}"))

    await asyncio.gather(*(save_after(n) for n in range(5)))
    assert await inbox_messages(topology) == [[f"R-{n}" for n in range(5)]]


async def test_enough_saves_end_the_linger(batcher: tuple[MakeBatcher, Topology]) -> None:
    make, topology = batcher
    group = make(linger=30.0, enough=4)  # a linger far longer than the test's timeout
    async with asyncio.timeout(10):
        await asyncio.gather(*(group.submit(inbound(f"R-{n}")) for n in range(4)))
    assert await inbox_messages(topology) == [[f"R-{n}" for n in range(4)]]


async def test_without_a_linger_a_lone_save_goes_at_once(
    batcher: tuple[MakeBatcher, Topology],
) -> None:
    make, topology = batcher
    group = make(linger=0.0)
    for n in range(3):
        await group.submit(inbound(f"R-{n}"))
    assert await inbox_messages(topology) == [["R-0"], ["R-1"], ["R-2"]]
