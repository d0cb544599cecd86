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
import time
from collections.abc import Mapping
from typing import Any, cast

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection

from hub.broker.connection import CONNECT_ERRORS, Nodes, declare
from hub.broker.topology import Topology
from hub.errors import Unavailable
from hub.ops import metrics

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
        self._underlay: aiormq.Channel | None = None
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
        properties = aiormq.spec.Basic.Properties(
            message_id=message_id,
            content_type=content_type,
            delivery_mode=2,  # persistent
            headers=dict(headers) if headers else None,
        )
        channel: aiormq.Channel | None = None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout):
                channel = await self._open()
                # aiormq directly, not aio-pika's Exchange: this is the ingress's hot path,
                # and not waiting for the socket drain saves a task switch per save.
                confirm = await channel.basic_publish(
                    body,
                    exchange=exchange,
                    routing_key=routing_key,
                    properties=properties,
                    mandatory=True,
                    wait=False,
                )
        except TimeoutError as exc:
            await self._drop(channel)
            raise Unavailable(f"the broker did not confirm within {self._timeout:g} s") from exc
        except _PUBLISH_ERRORS as exc:
            await self._drop(channel)
            raise Unavailable(f"the broker refused or lost the message: {exc!r}") from exc
        metrics.published(time.perf_counter() - started)
        if not isinstance(confirm, aiormq.spec.Basic.Ack):
            await self._drop(channel)
            raise Unavailable(f"the broker did not take the message: {confirm!r}")

    async def ready(self) -> bool:
        """Whether a confirmed channel is open or can be opened now."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._open()
        except (TimeoutError, *_PUBLISH_ERRORS, Unavailable):
            return False
        return True

    async def close(self) -> None:
        await self._drop(self._underlay)
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await _quietly_close(connection)

    async def _open(self) -> aiormq.Channel:
        current = self._underlay
        if current is not None and not current.is_closed:
            return current
        async with self._lock:
            if self._underlay is not None and not self._underlay.is_closed:
                return self._underlay
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
            self._channel = channel
            self._underlay = cast(aiormq.Channel, await channel.get_underlay_channel())
            return self._underlay

    async def _drop(self, underlay: aiormq.Channel | None) -> None:
        """Forget the channel (if still current) so that the next publish opens another."""
        channel = self._channel
        if underlay is None or underlay is not self._underlay or channel is None:
            return
        self._channel, self._underlay = None, None
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
