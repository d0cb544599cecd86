"""Publishing with publisher confirms, bounded in time.

`publish()` returns only when RabbitMQ confirmed the persistent message
(routed to a queue: messages are mandatory). Any failure, nack, unroutable
message or timeout raises Unavailable, and the channel is dropped so that
the next publish opens a fresh one (a channel that once saw a dead quorum
leader keeps nacking). A message may thus reach the queue twice; consumers
are idempotent. This module never retries on its own: the caller owns the
time bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

from hub.broker.connection import CONNECT_ERRORS, Nodes, declare
from hub.broker.topology import Topology
from hub.errors import Unavailable

log = structlog.get_logger(__name__)

_PUBLISH_ERRORS = (*CONNECT_ERRORS, aio_pika.exceptions.DeliveryError, RuntimeError)


class Publisher:
    """One confirmed channel, opened on first use and reopened after a failure."""

    def __init__(self, nodes: Nodes, topology: Topology, timeout: float, name: str) -> None:
        self._nodes = nodes
        self._topology = topology
        self._timeout = timeout
        self._name = name
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._lock = asyncio.Lock()

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> None:
        """Publish persistently and wait for the confirm, or raise Unavailable."""
        message = aio_pika.Message(
            body,
            message_id=message_id,
            content_type=content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=dict(headers or {}),
        )
        channel: AbstractChannel | None = None
        try:
            async with asyncio.timeout(self._timeout):
                channel = await self._open()
                target = self._exchanges.get(exchange)
                if target is None:
                    target = await channel.get_exchange(exchange, ensure=False)
                    self._exchanges[exchange] = target
                await target.publish(message, routing_key, mandatory=True)
        except TimeoutError as exc:
            await self._drop(channel)
            raise Unavailable(f"the broker did not confirm within {self._timeout:g} s") from exc
        except _PUBLISH_ERRORS as exc:
            await self._drop(channel)
            raise Unavailable(f"the broker refused or lost the message: {exc!r}") from exc

    async def ready(self) -> bool:
        """Whether a confirmed channel is open or can be opened now."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._open()
        except (TimeoutError, *_PUBLISH_ERRORS, Unavailable):
            return False
        return True

    async def close(self) -> None:
        await self._drop(self._channel)
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await _quietly_close(connection)

    async def _open(self) -> AbstractChannel:
        channel = self._channel
        if channel is not None and not channel.is_closed:
            return channel
        async with self._lock:
            if self._channel is not None and not self._channel.is_closed:
                return self._channel
            if self._connection is None or self._connection.is_closed:
                self._connection = await self._nodes.connect(self._name, self._timeout)
                log.info("broker connected", role=self._name)
            connection = self._connection
            try:
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                await declare(channel, self._topology)
            except BaseException:
                # A connection that cannot open a channel is dead to us, whatever it says.
                self._connection = None
                await _quietly_close(connection)
                raise
            self._channel, self._exchanges = channel, {}
            return channel

    async def _drop(self, channel: AbstractChannel | None) -> None:
        """Forget `channel` (if still current) so that the next publish opens another."""
        if channel is None or channel is not self._channel:
            return
        self._channel, self._exchanges = None, {}
        await _quietly_close(channel)
        connection = self._connection
        if connection is not None and connection.is_closed:
            self._connection = None


async def _quietly_close(closable: AbstractChannel | AbstractConnection) -> None:
    try:
        async with asyncio.timeout(2):
            await closable.close()
    except (TimeoutError, *CONNECT_ERRORS, aiormq.exceptions.AMQPError, RuntimeError):
        pass  # already gone: nothing to release on the broker's side
