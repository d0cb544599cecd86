"""Messages the router cannot use end in the inbox's dead-letter queue, with a reason."""

from __future__ import annotations

import asyncio

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from hub.broker.connection import Nodes, declare
from hub.broker.consumer import Consumer, Incoming, RetryBudget
from hub.broker.topology import INBOX, Topology
from hub.settings import Settings
from tests.conftest import AMQP_URL, Hub, delete_topology, eventually


async def next_dead(
    channel: aio_pika.abc.AbstractChannel, queue_name: str
) -> AbstractIncomingMessage:
    queue = await channel.get_queue(queue_name, ensure=False)

    async def probe() -> AbstractIncomingMessage | None:
        return await queue.get(fail=False, no_ack=True)

    message: AbstractIncomingMessage = await eventually(probe, within=20)
    return message


async def test_a_poison_message_is_dead_lettered_with_its_reason(
    hub: Hub, channel: aio_pika.abc.AbstractChannel, settings: Settings
) -> None:
    topology = Topology(settings.namespace)
    exchange = await channel.get_exchange(topology.inbox_exchange.name)
    await exchange.publish(aio_pika.Message(b"{not json", message_id="poison-1"), INBOX)

    dead = await next_dead(channel, topology.inbox_dead.name)
    assert dead.message_id == "poison-1"
    assert dead.body == b"{not json"
    assert "not an inbox message" in str(dead.headers["x-hub-reason"])
    assert dead.headers["x-hub-queue"] == topology.inbox.name


async def test_a_message_that_keeps_crashing_its_worker_ends_in_dead_letters(
    channel: aio_pika.abc.AbstractChannel, namespace: str
) -> None:
    topology = Topology(namespace, inbox_delivery_limit=2)
    calls = 0

    async def crashing(incoming: Incoming) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("a bug in the handler")

    consumer = Consumer(
        Nodes((AMQP_URL,)),
        topology,
        topology.inbox,
        crashing,
        prefetch=1,
        name="test",
        retry=RetryBudget(attempts=1),
    )
    stopping = asyncio.Event()
    running = asyncio.create_task(consumer.run(stopping, grace=1))
    try:
        await declare(channel, topology)
        exchange = await channel.get_exchange(topology.inbox_exchange.name)
        await exchange.publish(aio_pika.Message(b"{}", message_id="crash-1"), INBOX)
        dead = await next_dead(channel, topology.inbox_dead.name)
        assert dead.message_id == "crash-1"
        assert calls == 3  # first delivery + 2 redeliveries, then the limit
        death = dead.headers["x-death"][0]  # type: ignore[index]
        assert death["reason"] == "delivery_limit"  # type: ignore[index]
    finally:
        stopping.set()
        await running
        await delete_topology(AMQP_URL, topology)
