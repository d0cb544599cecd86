"""`hub status`/`hub queues` with the management plugin: unacked counts and rates.

The local cluster's nodes run the plugin (the machine's node need not): the
figures come from the first node of HUB_MANAGEMENT_URL that answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import aio_pika
import pytest

from hub.broker.connection import declare
from hub.broker.topology import INBOX
from hub.ops import status
from hub.ops.context import Ops
from hub.settings import Settings
from hub.tenancy import Tenancy
from tests.cluster.conftest import CLUSTER_WORKER, Cluster
from tests.conftest import delete_topology, eventually

pytestmark = [pytest.mark.cluster, CLUSTER_WORKER]


@pytest.fixture
async def ops(cluster: Cluster, settings: Settings, tenancy: Tenancy) -> AsyncIterator[Ops]:
    plugin = tuple(url.replace("http://", "http://guest:guest@") for url in cluster.management)
    ours = replace(
        settings,
        amqp_urls=cluster.urls,
        # The first is nobody: the next node's plugin answers.
        management_urls=("http://guest:guest@127.0.0.1:1/api", *plugin[1:]),
    )
    opened = await Ops.open(ours, tenancy)
    try:
        yield opened
    finally:
        await opened.close()
        await delete_topology(cluster.urls[0], opened.topology)


async def test_queues_show_unacked_and_rates_from_the_plugin(cluster: Cluster, ops: Ops) -> None:
    connection = await aio_pika.connect(cluster.urls[0])
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await declare(channel, ops.topology)
        exchange = await channel.get_exchange(ops.topology.inbox_exchange.name)
        for n in range(5):
            await exchange.publish(aio_pika.Message(f"{n}".encode()), routing_key=INBOX)
        # Two taken and held, not acked.
        holding = await connection.channel()
        await holding.set_qos(prefetch_count=2)
        queue = await holding.get_queue(ops.topology.inbox.name)
        held: list[aio_pika.abc.AbstractIncomingMessage] = []

        async def hold(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            held.append(message)

        await queue.consume(hold)

        async def shown() -> dict | None:  # type: ignore[type-arg]
            found = {q["queue"]: q for q in await status.queues(ops)}
            inbox = found[ops.topology.inbox.name]
            return inbox if inbox["unacked"] == 2 and inbox["messages"] == 3 else None

        inbox = await eventually(shown, within=30, interval=0.5)
        assert inbox["consumers"] == 1
        assert isinstance(inbox["in_per_s"], float)
        assert isinstance(inbox["out_per_s"], float)


async def test_without_the_plugin_the_figures_are_none(ops: Ops) -> None:
    ops.settings = replace(ops.settings, management_urls=("http://guest:guest@127.0.0.1:1/api",))
    found = await status.queues(ops)
    assert found
    assert all(q["unacked"] is None and q["in_per_s"] is None for q in found)
    assert all(q["messages"] is None or q["messages"] >= 0 for q in found)
