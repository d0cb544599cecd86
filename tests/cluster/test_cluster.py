"""The local three-node RabbitMQ cluster (deploy/cluster/cluster.sh).

A quorum queue declared through node 1 has a member on each of the three
nodes; what is published there with confirms is consumed through node 3.
The session's fixture starts the cluster unless it runs already, and stops it
at the end only if it started it. The machine's own node is not used.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import aiohttp
import aiormq
import pytest

pytestmark = pytest.mark.cluster

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "cluster" / "cluster.sh"
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
NODES = ("hub1", "hub2", "hub3")


@dataclass(frozen=True)
class Cluster:
    urls: tuple[str, ...]  # AMQP, one per node
    management: tuple[str, ...]  # the management API's base URL, one per node
    host: str

    def node(self, i: int) -> str:
        return f"{NODES[i]}@{self.host}"

    async def ctl(self, node: int, *args: str) -> str:
        """rabbitmqctl ARGS against node `node` (0-2), with the cluster's environment."""
        process = await asyncio.create_subprocess_exec(
            str(SCRIPT),
            "ctl",
            str(node + 1),
            *args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        return out.decode()


def script(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def amqp_urls(stdout: str) -> tuple[str, ...]:
    line = next(x for x in stdout.splitlines() if x.startswith("HUB_AMQP_URL="))
    return tuple(line.removeprefix("HUB_AMQP_URL=").split(","))


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if not RABBITMQ_SERVER.exists():
        pytest.skip(f"RabbitMQ is not installed ({RABBITMQ_SERVER} is missing)")
    started = script("status").returncode != 0
    if started:
        run = script("start", timeout=240)
        assert run.returncode == 0, f"cluster.sh start failed:\n{run.stderr}"
    else:
        run = script("url")
    urls = amqp_urls(run.stdout)
    assert len(urls) == len(NODES), run.stdout
    try:
        yield Cluster(
            urls=urls,
            management=tuple(f"http://127.0.0.1:{15681 + i}/api" for i in range(len(NODES))),
            host=os.environ.get("HUB_CLUSTER_HOST", "localhost"),
        )
    finally:
        if started:
            stop = script("stop", timeout=120)
            assert stop.returncode == 0, f"cluster.sh stop failed:\n{stop.stderr}"


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

            guest = {"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()}
            async with (
                aiohttp.ClientSession(headers=guest) as http,
                http.get(f"{cluster.management[2]}/queues/%2F/{name}") as response,
            ):
                assert response.status == 200
                shown = await response.json()
            assert sorted(shown["members"]) == sorted(row["members"])
        finally:
            await publishing.queue_delete(name)
