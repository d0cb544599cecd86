"""Connections to RabbitMQ: one node after another until one answers.

`HUB_AMQP_URL` may list several nodes; `connect()` tries them in turn, each
call starting one node further than the last, from a random first node: so
the connections of many processes spread over the cluster, and a dead node
costs one failed attempt. Recovery is
the caller's loop (publisher: on the next publish; consumer: its supervise
loop), not aio-pika's robust connection, which knows one address only.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Sequence

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection

from hub.broker.topology import Topology
from hub.errors import Unavailable

CONNECT_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
)


class Nodes:
    """The broker nodes to try, and which to try first next time."""

    def __init__(self, urls: Sequence[str]) -> None:
        if not urls:
            raise ValueError("no broker URL given")
        self._urls = tuple(urls)
        first = random.randrange(len(self._urls))
        self._start = itertools.cycle([*range(first, len(self._urls)), *range(first)])

    async def connect(self, name: str, within: float = 5.0) -> AbstractConnection:
        """An open connection to the first node that answers, or Unavailable."""
        first = next(self._start)
        errors = []
        for i in range(len(self._urls)):
            url = self._urls[(first + i) % len(self._urls)]
            try:
                return await aio_pika.connect(
                    url, timeout=within, client_properties={"connection_name": name}
                )
            except CONNECT_ERRORS as exc:
                errors.append(f"{_safe(url)}: {exc!r}")
        raise Unavailable("no broker node answered: " + "; ".join(errors))


async def declare(channel: AbstractChannel, topology: Topology) -> None:
    """Declare every exchange and queue of the topology, and their bindings."""
    for exchange in topology.exchanges():
        await channel.declare_exchange(exchange.name, exchange.type, durable=True)
    for queue in topology.queues():
        declared = await channel.declare_queue(
            queue.name, durable=True, arguments=queue.arguments()
        )
        await declared.bind(queue.exchange, queue.routing_key)


def _safe(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{userinfo.split(':')[0]}@{host}" if at else url
