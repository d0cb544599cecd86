"""A message of several parts: the parts that fail go on alone, the rest is acked."""

from __future__ import annotations

import asyncio

import aio_pika

from hub.broker.connection import Nodes, declare
from hub.broker.consumer import Consumer, Incoming, PartsFailed, RetryBudget
from hub.broker.topology import Topology
from hub.errors import PermanentError, TransientError
from tests.conftest import AMQP_URL, delete_topology, eventually


async def test_failed_parts_are_delayed_or_dead_lettered_each_alone(
    channel: aio_pika.abc.AbstractChannel, namespace: str
) -> None:
    topology = Topology(namespace, partners=("crm",), tiers=(1,))
    queue = topology.deliver("crm")
    seen: list[bytes] = []

    async def handler(incoming: Incoming) -> None:
        seen.append(incoming.body)
        if incoming.body == b"a,b,c":
            raise PartsFailed(
                [
                    (
                        Incoming(b"b", "m:b", incoming.attempt, incoming.headers),
                        TransientError("503"),
                    ),
                    (
                        Incoming(b"c", "m:c", incoming.attempt, incoming.headers),
                        PermanentError("400"),
                    ),
                ]
            )
        if incoming.body == b"b" and incoming.attempt == 1:
            raise TransientError("still 503")

    consumer = Consumer(
        Nodes((AMQP_URL,)),
        topology,
        queue,
        handler,
        prefetch=4,
        name="test",
        retry=RetryBudget(attempts=2, first_wait=0.01, tiers=True, max_attempts=3),
    )
    stopping = asyncio.Event()
    running = asyncio.create_task(consumer.run(stopping, grace=1))
    try:
        await declare(channel, topology)
        exchange = await channel.get_exchange(topology.deliver_exchange.name)
        await exchange.publish(aio_pika.Message(b"a,b,c", message_id="m"), "crm")
        dead_queue = await channel.get_queue(topology.dead_letters_of(queue).name, ensure=False)

        async def dead() -> aio_pika.abc.AbstractIncomingMessage | None:
            return await dead_queue.get(fail=False, no_ack=True)

        message = await eventually(dead, within=10)
        assert (message.body, message.message_id) == (b"c", "m:c")
        assert "400" in str(message.headers["x-hub-reason"])

        async def b_came_back_from_the_tier() -> bool:
            return seen.count(b"b") == 3  # in process twice, then from the 1 s tier

        await eventually(b_came_back_from_the_tier, within=10)
        assert seen.count(b"a,b,c") == 1  # the message itself was acked, not redelivered
        assert seen.count(b"c") == 0  # a permanent failure is not retried
        assert await dead_queue.get(fail=False) is None
        work = await channel.declare_queue(queue.name, passive=True)
        assert work.declaration_result.message_count == 0
    finally:
        stopping.set()
        await running
        await delete_topology(AMQP_URL, topology)
