"""Consuming a work queue, and the one place that maps outcomes to acks.

    handler returns            -> ack
    TransientError             -> retried in process (tenacity, stop + budget),
                                  then nack with requeue: the quorum queue's
                                  delivery limit bounds the redeliveries
    PermanentError             -> copied to the dead-letter exchange with the
                                  reason in `x-hub-reason`, confirmed, then ack
    any other exception (bug)  -> logged, nack with requeue: the delivery limit
                                  ends it in the dead-letter queue

`Consumer.run()` reconnects after a lost connection until asked to stop, and
then drains: it cancels the consumer and waits for the messages in hand.
Handlers know nothing of AMQP: they get the body and the message id.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from hub.broker.connection import CONNECT_ERRORS, Nodes, declare
from hub.broker.topology import Queue, Topology
from hub.errors import PermanentError, TransientError, Unavailable

log = structlog.get_logger(__name__)

Handler = Callable[[bytes, str | None], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryBudget:
    """How long a transient failure is retried in process before a requeue."""

    attempts: int = 5
    seconds: float = 30.0
    first_wait: float = 0.2
    max_wait: float = 5.0


class Consumer:
    """Competing consumer of one quorum queue with bounded concurrency (the prefetch)."""

    def __init__(
        self,
        nodes: Nodes,
        topology: Topology,
        queue: Queue,
        handler: Handler,
        *,
        prefetch: int,
        name: str,
        retry: RetryBudget | None = None,
    ) -> None:
        self._nodes = nodes
        self._topology = topology
        self._queue = queue
        self._handler = handler
        self._prefetch = prefetch
        self._name = name
        self._retry = retry or RetryBudget()
        self._in_hand: set[asyncio.Task[object]] = set()
        self._dead: AbstractExchange | None = None

    async def run(self, stopping: asyncio.Event, grace: float) -> None:
        """Consume until `stopping` is set, reconnecting as needed; then drain."""
        backoff = 0.5
        while not stopping.is_set():
            try:
                connection = await self._nodes.connect(self._name)
            except Unavailable as exc:
                log.warning("broker unavailable", role=self._name, error=str(exc), retry_in=backoff)
                await _wait(stopping, backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            try:
                await self._consume(connection.channel, stopping, grace)
            except CONNECT_ERRORS as exc:
                log.warning("broker connection lost", role=self._name, error=repr(exc))
            finally:
                await _close(connection)

    async def _consume(
        self,
        open_channel: Callable[..., Awaitable[AbstractChannel]],
        stopping: asyncio.Event,
        grace: float,
    ) -> None:
        channel = await open_channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=self._prefetch)
        await declare(channel, self._topology)
        self._dead = await channel.get_exchange(self._topology.dead_exchange.name, ensure=False)
        queue = await channel.get_queue(self._queue.name, ensure=False)
        tag = await queue.consume(self._on_message)
        log.info("consuming", role=self._name, queue=self._queue.name, prefetch=self._prefetch)
        stop = asyncio.ensure_future(stopping.wait())
        lost = asyncio.ensure_future(channel.closed())
        try:
            await asyncio.wait({stop, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            lost.cancel()
        if stopping.is_set() and not channel.is_closed:
            await queue.cancel(tag)
            await self._drain(grace)

    async def _drain(self, grace: float) -> None:
        if not self._in_hand:
            return
        log.info("draining", role=self._name, in_hand=len(self._in_hand))
        _, pending = await asyncio.wait(set(self._in_hand), timeout=grace)
        for task in pending:  # not acked: the broker gives them to another consumer
            task.cancel()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_hand.add(task)
        try:
            await self._settle(message)
        finally:
            self._in_hand.discard(task)

    async def _settle(self, message: AbstractIncomingMessage) -> None:
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(TransientError),
                stop=stop_after_attempt(self._retry.attempts)
                | stop_after_delay(self._retry.seconds),
                wait=wait_exponential(multiplier=self._retry.first_wait, max=self._retry.max_wait)
                + wait_random(0, self._retry.first_wait),
                reraise=True,
            ):
                with attempt:
                    await self._handler(message.body, message.message_id)
        except PermanentError as exc:
            await self._dead_letter(message, str(exc))
        except TransientError as exc:
            log.warning("requeued", role=self._name, message_id=message.message_id, error=str(exc))
            await message.nack(requeue=True)
        except Exception:
            # A bug, not the message's fault as far as we know: requeue, and let the
            # queue's delivery limit dead-letter it if it keeps failing.
            log.exception("handler failed", role=self._name, message_id=message.message_id)
            await message.nack(requeue=True)
        else:
            await message.ack()

    async def _dead_letter(self, message: AbstractIncomingMessage, reason: str) -> None:
        assert self._dead is not None
        headers = dict(message.headers or {})
        headers |= {
            "x-hub-reason": reason,
            "x-hub-queue": self._queue.name,
            "x-hub-dead-at": datetime.datetime.now(datetime.UTC).isoformat(),
        }
        copy = aio_pika.Message(
            message.body,
            headers=headers,
            message_id=message.message_id,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            await self._dead.publish(copy, self._queue.routing_key, mandatory=True)
        except (*CONNECT_ERRORS, aio_pika.exceptions.DeliveryError) as exc:
            # Not kept yet: leave it in the queue; it comes back, or the limit takes it.
            log.error("dead-letter failed", role=self._name, reason=reason, error=repr(exc))
            await message.nack(requeue=True)
            return
        await message.ack()
        log.warning("dead-lettered", role=self._name, message_id=message.message_id, reason=reason)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        pass


async def _close(connection: aio_pika.abc.AbstractConnection) -> None:
    try:
        async with asyncio.timeout(2):
            await connection.close()
    except (TimeoutError, *CONNECT_ERRORS):
        pass  # the connection is gone already
