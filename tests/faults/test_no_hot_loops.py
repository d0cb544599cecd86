"""Nothing spins: a handler that fails on every message backs off, and every consumed
queue (the keeper's dead-letter queues included) has a delivery limit and a route out.

Before: the keeper's queues had no delivery limit, and a failing handler was
requeued at once, so a hub on a database without its schema logged 1.1 GB in
8 minutes with one core busy.
"""

from __future__ import annotations

import asyncio

import aio_pika

from hub.broker.connection import Nodes, declare
from hub.broker.consumer import Consumer, Incoming
from hub.broker.topology import Topology
from tests.conftest import AMQP_URL, delete_topology, eventually


async def test_a_handler_that_always_fails_backs_off(
    channel: aio_pika.abc.AbstractChannel, namespace: str
) -> None:
    topology = Topology(namespace)
    calls = 0

    async def broken(incoming: Incoming) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("a bug")

    consumer = Consumer(Nodes((AMQP_URL,)), topology, topology.inbox, broken, prefetch=1, name="t")
    stopping = asyncio.Event()
    running = asyncio.create_task(consumer.run(stopping, grace=1))
    try:
        await declare(channel, topology)
        exchange = await channel.get_exchange(topology.inbox_exchange.name)
        await exchange.publish(aio_pika.Message(b"[]", message_id="m1"), "inbox")

        async def tried() -> bool:
            return calls > 0

        await eventually(tried)
        await asyncio.sleep(4)
        # Without the backoff: hundreds a second, until the delivery limit (10) in a few ms.
        # With it (0.2 s doubling, jitter down to half): at most 6 tries in 4 s.
        assert 2 <= calls <= 6, calls
    finally:
        stopping.set()
        await running
        await delete_topology(AMQP_URL, topology)


async def test_a_dead_letter_the_keeper_cannot_store_is_parked(
    channel: aio_pika.abc.AbstractChannel, namespace: str
) -> None:
    topology = Topology(namespace, partners=("crm",))
    try:
        await declare(channel, topology)
        for queue in topology.queues():  # every queue the hub consumes has a way out
            if not queue.name.startswith(f"{namespace}.retry.") and queue != topology.parked:
                assert queue.delivery_limit, queue.name
                assert queue.dead_letter_exchange, queue.name
        dead = topology.dead_letters_of(topology.deliver("crm"))
        exchange = await channel.get_exchange(topology.dead_exchange.name)
        await exchange.publish(aio_pika.Message(b"{}", message_id="d1"), dead.routing_key)
        queue = await channel.get_queue(dead.name)
        for _ in range(topology.delivery_limit + 1):  # a keeper that fails every time

            async def got() -> aio_pika.abc.AbstractIncomingMessage | None:
                return await queue.get(fail=False)

            message = await eventually(got)
            await message.nack(requeue=True)
            parked = await channel.declare_queue(topology.parked.name, passive=True)
            if parked.declaration_result.message_count:
                break
        parked_queue = await channel.get_queue(topology.parked.name)

        async def parked_message() -> aio_pika.abc.AbstractIncomingMessage | None:
            return await parked_queue.get(fail=False)

        message = await eventually(parked_message)
        assert message.message_id == "d1"
        await message.ack()
    finally:
        await delete_topology(AMQP_URL, topology)
