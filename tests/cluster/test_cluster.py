"""The local three-node RabbitMQ cluster (deploy/cluster/cluster.sh).

A quorum queue declared through node 1 has a member on each of the three
nodes; what is published there with confirms is consumed through node 3.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import aio_pika
import aiormq
import pytest

from hub.broker.connection import Nodes, declare
from hub.broker.publisher import Publisher
from hub.broker.topology import INBOX, Topology
from hub.ops import metrics
from tests.cluster.conftest import CLUSTER_WORKER, NODES, Cluster
from tests.conftest import delete_topology

pytestmark = [pytest.mark.cluster, CLUSTER_WORKER]


async def test_quorum_queue_through_node_1_is_consumed_through_node_3(cluster: Cluster) -> None:
    name = f"t_cluster_{uuid.uuid4().hex[:10]}"
    bodies = [f"message {i}".encode() for i in range(20)]
    first = await aio_pika.connect(cluster.urls[0])
    third = await aio_pika.connect(cluster.urls[2])
    async with first, third:
        publishing = await first.channel(publisher_confirms=True)
        await publishing.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        try:
            for body in bodies:
                confirm = await publishing.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=name,
                )
                assert isinstance(confirm, aiormq.spec.Basic.Ack)

            consuming = await third.channel()
            queue = await consuming.declare_queue(name, passive=True)
            received: list[bytes] = []
            async with asyncio.timeout(10), queue.iterator() as messages:
                async for message in messages:
                    async with message.process():
                        received.append(message.body)
                    if len(received) == len(bodies):
                        break
            assert received == bodies

            # Three members, one per node: as rabbitmqctl and the management API see them.
            columns = ("name", "type", "leader", "members")
            listed = json.loads(
                await cluster.ctl(2, "-q", "list_queues", *columns, "--formatter", "json")
            )
            (row,) = [q for q in listed if q["name"] == name]
            assert row["type"] == "quorum"
            assert sorted(row["members"]) == [cluster.node(i) for i in range(len(NODES))]
            assert row["leader"] in row["members"]

            shown = await cluster.api(f"/queues/%2F/{name}", via=2)
            assert sorted(shown["members"]) == sorted(row["members"])
        finally:
            await publishing.queue_delete(name)


async def test_publisher_survives_the_death_of_the_queue_leader(cluster: Cluster) -> None:
    # Connected to a node that is not the leader: its channel saw the leader, which dies.
    topology = Topology(f"t_cluster_{uuid.uuid4().hex[:10]}")
    admin = await aio_pika.connect(cluster.urls[0])
    async with admin:
        await declare(await admin.channel(), topology)
    leader = await cluster.leader(topology.inbox.name, via=0)
    assert leader is not None
    dying = cluster.index(leader)
    survivor = (dying + 1) % len(NODES)
    publisher = Publisher(Nodes((cluster.urls[survivor],)), topology, timeout=15, name="t")
    try:
        await publisher.publish(topology.inbox_exchange.name, INBOX, b"1", message_id="m-1")
        republished = metrics.REPUBLISHED._value.get()
        await cluster.kill(dying)
        try:
            await publisher.publish(topology.inbox_exchange.name, INBOX, b"2", message_id="m-2")
            await publisher.publish(topology.inbox_exchange.name, INBOX, b"3", message_id="m-3")
            tried_again = metrics.REPUBLISHED._value.get() - republished
        finally:
            await cluster.restart()
        reading = await aio_pika.connect(cluster.urls[survivor])
        async with reading:
            channel = await reading.channel()
            queue = await channel.get_queue(topology.inbox.name)
            bodies = []
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                bodies.append(message.body)
        assert bodies == [b"1", b"2", b"3"]
        print(f"publishes tried again on a fresh channel after the leader died: {tried_again:g}")
    finally:
        await publisher.close()
        await delete_topology(cluster.urls[survivor], topology)
