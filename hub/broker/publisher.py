"""Publishing with publisher confirms, bounded in time.

`publish()` returns only when RabbitMQ confirmed the persistent message
(routed to a queue: messages are mandatory). A nack, a closed channel or a
lost connection drops the channel and publishes again on a fresh one (on the
next node that answers, see `Nodes`), until the publisher's time bound runs
out; then it raises Unavailable. Fresh, because on RabbitMQ 3.10 a channel
whose publish reached a quorum leader that then died keeps answering nack
for as long as that node is down, while a new channel works. An unroutable
message (returned: no queue bound) is not retried: it raises Unavailable at
once. A message may thus reach the queue twice; consumers are idempotent.

A nack on fresh channels, again and again, is not a dead leader but a queue
that refuses (at its maximum length, reject-publish): after `_NACKS` nacks
in a row it raises Unavailable at once, without waiting for the time bound,
so that a full queue is a quick 503 at the ingress rather than a slow one.
"""

from __future__ import annotations

import asyncio
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
from hub.pacing import Repeats, backoff

log = structlog.get_logger(__name__)

_PUBLISH_ERRORS = (*CONNECT_ERRORS, aio_pika.exceptions.DeliveryError, RuntimeError)
# Between tries on a fresh channel: 50 ms, doubling up to 0.5 s, jittered (the publishers
# of many processes that lost one node must not come back in step).
_FIRST_PAUSE = 0.05
_MAX_PAUSE = 0.5
# Nacks in a row (the first channel's and then fresh ones') that mean "refused".
_NACKS = 3


class _Retry(Exception):
    """A try failed in a way that a fresh channel may not: publish again."""


class _Nacked(_Retry):
    """The broker answered nack: a stale channel, or a queue that refuses."""


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
        self._repeats = Repeats(10.0)

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
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self._timeout
        tries = nacks = 0
        while True:
            tries += 1
            try:
                await self._publish_once(exchange, routing_key, body, properties, deadline)
            except _Retry as exc:
                nacks = nacks + 1 if isinstance(exc, _Nacked) else 0
                if nacks >= _NACKS:
                    raise Unavailable(
                        f"the broker refused the message {nacks} times in a row "
                        "(a queue at its maximum length?)"
                    ) from exc
                pause = backoff(tries, _FIRST_PAUSE, _MAX_PAUSE)
                if loop.time() + pause >= deadline:
                    raise Unavailable(f"{exc} (tried {tries} times)") from exc.__cause__
                self._repeats.log(  # a full queue or a node away: a few lines a minute
                    log.warning,
                    type(exc),
                    "publish failed, again on a fresh channel",
                    role=self._name,
                    error=str(exc),
                )
                await asyncio.sleep(pause)
                continue
            metrics.published(loop.time() - started)
            if tries > 1:
                metrics.republished(tries - 1)
            return

    async def _publish_once(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: aiormq.spec.Basic.Properties,
        deadline: float,
    ) -> None:
        channel: aiormq.Channel | None = None
        try:
            async with asyncio.timeout_at(deadline):
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
        except aiormq.exceptions.PublishError as exc:
            raise Unavailable(f"the broker could not route the message: {exc!r}") from exc
        except aiormq.exceptions.DeliveryError as exc:  # how aiormq answers a nack
            await self._drop(channel)
            raise _Nacked(f"the broker did not take the message: {exc!r}") from exc
        except _PUBLISH_ERRORS as exc:
            await self._drop(channel)
            raise _Retry(f"the broker refused or lost the message: {exc!r}") from exc
        except Unavailable as exc:  # no node answered
            raise _Retry(str(exc)) from exc
        if not isinstance(confirm, aiormq.spec.Basic.Ack):
            await self._drop(channel)
            raise _Nacked(f"the broker did not take the message: {confirm!r}")

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
