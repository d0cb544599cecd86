"""The ingress's group commit against the real broker: who shares an inbox message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import aio_pika
import pytest

from hub.broker.connection import Nodes
from hub.broker.publisher import Publisher
from hub.broker.topology import INBOX, Topology
from hub.errors import Unavailable
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
            **{"timeout": 5} | options,  # type: ignore[arg-type]
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


async def test_past_max_waiting_a_save_is_refused_at_once_and_never_published(
    batcher: tuple[MakeBatcher, Topology],
) -> None:
    """A long linger keeps saves waiting, as a slow broker would: the third is refused."""
    make, topology = batcher
    group = make(linger=0.9, enough=64, max_waiting=2, timeout=10)
    waiting = [asyncio.create_task(group.submit(inbound(f"R-{n}"))) for n in range(2)]
    await asyncio.sleep(0.05)
    assert group.waiting == 2
    started = asyncio.get_running_loop().time()
    with pytest.raises(Unavailable, match="2 saves wait") as refused:
        await group.submit(inbound("R-refused"))
    assert asyncio.get_running_loop().time() - started < 0.1
    assert refused.value.retry_after is not None
    assert 1 <= refused.value.retry_after <= 10
    await asyncio.gather(*waiting)
    assert await inbox_messages(topology) == [["R-0", "R-1"]]


async def test_a_save_that_timed_out_waiting_leaves_and_is_never_published(
    batcher: tuple[MakeBatcher, Topology],
) -> None:
    """Its answer was 503: it must not reach the inbox with the saves after it."""
    make, topology = batcher
    group = make(linger=3.0, enough=3, timeout=1.0)
    with pytest.raises(Unavailable, match="no confirm"):
        await group.submit(inbound("R-timed-out"))
    assert group.waiting == 0
    async with asyncio.timeout(10):
        await asyncio.gather(*(group.submit(inbound(f"R-{n}")) for n in range(3)))
    await group.stop()
    assert await inbox_messages(topology) == [["R-0", "R-1", "R-2"]]
