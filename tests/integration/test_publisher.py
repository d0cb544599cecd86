"""The publisher: a confirm means the message is in a queue; anything else is Unavailable."""

from __future__ import annotations

import aio_pika
import pytest

from hub.broker.connection import Nodes
from hub.broker.publisher import Publisher
from hub.broker.topology import INBOX, Topology
from hub.errors import Unavailable
from tests.conftest import AMQP_URL, delete_topology


async def test_confirmed_then_unroutable(namespace: str) -> None:
    topology = Topology(namespace)
    publisher = Publisher(Nodes((AMQP_URL,)), topology, timeout=3, name="test")
    try:
        await publisher.publish(topology.inbox_exchange.name, INBOX, b"{}", message_id="m-1")
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            queue = await channel.get_queue(topology.inbox.name)
            message = await queue.get(no_ack=True)
            assert (message.body, message.message_id) == (b"{}", "m-1")
            assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
            await channel.queue_delete(topology.inbox.name)
        # The queue is gone: the message cannot be routed, so it is not "stored".
        with pytest.raises(Unavailable, match="could not route"):
            await publisher.publish(topology.inbox_exchange.name, INBOX, b"{}", message_id="m-2")
    finally:
        await publisher.close()
        await delete_topology(AMQP_URL, topology)


async def test_no_broker_is_unavailable_quickly(namespace: str) -> None:
    publisher = Publisher(
        Nodes(("amqp://guest:guest@127.0.0.1:1/",)), Topology(namespace), timeout=2, name="t"
    )
    with pytest.raises(Unavailable, match="no broker node answered"):
        await publisher.publish("x", "y", b"{}", message_id="m")
    assert not await publisher.ready()
