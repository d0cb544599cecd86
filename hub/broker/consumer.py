"""Consuming a work queue, and the one place that maps outcomes to acks.

    handler returns            -> ack
    TransientError             -> retried in process (tenacity: stop after a few
                                  attempts and a total budget, Retry-After
                                  honoured); then, on a queue with delay tiers,
                                  republished to the next tier (attempt + 1) or
                                  dead-lettered once `max_attempts` is reached;
                                  on a queue without tiers, nack with requeue
                                  (the delivery limit bounds the redeliveries)
    PermanentError             -> copied to the dead-letter exchange with the
                                  reason in `x-hub-reason`, confirmed, then ack
    Away (a server away)       -> held: not acked, no attempt spent, never
                                  dead-lettered. The database (the Gate knows
                                  it): the gate closes, the consumer starts no
                                  other message, and the handler runs again once
                                  the gate opens. Another (the broker refusing
                                  the handler's publishes): run again after a
                                  capped backoff. Never faster than that backoff.
    any other exception (bug)  -> logged (once per minute per kind, with a
                                  count), a capped backoff, then nack with
                                  requeue: the delivery limit ends it in the
                                  dead-letter queue
    PartsFailed                -> each failed part, as a message of its own, as
                                  above; then ack (nack if a part was not moved)

`Consumer.run()` reconnects after a lost connection (backoff with jitter)
until asked to stop, and then drains: it cancels the consumer and waits for
the messages in hand. Handlers know nothing of AMQP: they get an `Incoming`.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from hub.broker.connection import CONNECT_ERRORS, Nodes, declare
from hub.broker.topology import Queue, Topology
from hub.errors import Away, PermanentError, TransientError, Unavailable
from hub.ops import metrics
from hub.pacing import Repeats, backoff

log = structlog.get_logger(__name__)

ATTEMPT = "x-hub-attempt"


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message as a handler sees it."""

    body: bytes
    message_id: str | None
    attempt: int  # 1 for the first delivery, +1 per delay tier passed
    headers: Mapping[str, Any] = field(default_factory=dict)


Handler = Callable[[Incoming], Awaitable[None]]


class Gate(Protocol):
    """A server that every consumer of a process needs (`hub/store/health.py`)."""

    def is_away(self, exc: BaseException) -> bool: ...

    def close(self, cause: BaseException) -> None: ...

    async def wait_open(self) -> None: ...


class PartsFailed(Exception):
    """Raised by a handler when some parts of a message of several parts failed.

    Each failed part is a message of its own from then on: retried in process,
    then sent to a delay tier or the dead letters alone. The message itself is
    acked once every failed part has been moved (nacked, to come back whole, if
    one could not be).
    """

    def __init__(self, parts: Sequence[tuple[Incoming, Exception]]) -> None:
        super().__init__(f"{len(parts)} part(s) failed")
        self.parts = list(parts)


@dataclass(frozen=True, slots=True)
class RetryBudget:
    """How a transient failure is retried in process, then through delay tiers."""

    attempts: int = 5
    seconds: float = 30.0
    first_wait: float = 0.2
    max_wait: float = 5.0
    # With tiers: republish after the in-process budget, dead-letter after max_attempts.
    tiers: bool = False
    max_attempts: int = 5


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
        gate: Gate | None = None,
    ) -> None:
        self._nodes = nodes
        self._topology = topology
        self._queue = queue
        self._handler = handler
        self._prefetch = prefetch
        self._name = name
        self._retry = retry or RetryBudget()
        self._gate = gate
        self._in_hand: set[asyncio.Task[object]] = set()
        self._channel: AbstractChannel | None = None
        self._failures = 0  # bugs in a row: how long to wait before the next requeue
        self._repeats = Repeats(60.0)

    async def run(self, stopping: asyncio.Event, grace: float) -> None:
        """Consume until `stopping` is set, reconnecting as needed; then drain."""
        tries = 0
        while not stopping.is_set():
            try:
                connection = await self._nodes.connect(self._name)
            except Unavailable as exc:
                tries += 1
                wait = backoff(tries, 0.5, 10.0)
                self._repeats.log(
                    log.warning,
                    "broker",
                    "broker unavailable",
                    role=self._name,
                    error=str(exc),
                    retry_in=round(wait, 2),
                )
                await _wait(stopping, wait)
                continue
            tries = 0
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
        self._channel = channel
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
        headers = dict(message.headers or {})
        incoming = Incoming(message.body, message.message_id, _attempt(headers), headers)
        error = await self._through_outages(incoming)
        if isinstance(error, PartsFailed):
            moved = await asyncio.gather(
                *(self._settle_part(part, exc, message.content_type) for part, exc in error.parts)
            )
            # A part that could not be moved: the whole message comes back (its other parts
            # are done, and a job done is skipped), after a pause as for a bug.
            if all(moved):
                await message.ack()
            else:
                self._failures += 1
                await asyncio.sleep(backoff(self._failures, 0.2, 30.0))
                await message.nack(requeue=True)
        elif error is None:
            self._failures = 0
            await message.ack()
        elif isinstance(error, PermanentError | TransientError):
            await (
                message.ack()
                if await self._move(incoming, error, message.content_type)
                else message.nack(requeue=True)
            )
        else:
            # A bug, not the message's fault as far as we know: requeue, and let the
            # queue's delivery limit dead-letter it if it keeps failing. Not at once:
            # a handler that fails on every message would otherwise spin.
            self._bug(message.message_id, error)
            self._failures += 1
            await asyncio.sleep(backoff(self._failures, 0.2, 30.0))
            await message.nack(requeue=True)

    def _bug(self, message_id: str | None, error: Exception) -> None:
        key = (type(error), str(error)[:200])
        self._repeats.log(
            log.error,
            key,
            "handler failed",
            role=self._name,
            message_id=message_id,
            exc_info=error,
        )

    async def _through_outages(self, incoming: Incoming) -> Exception | None:
        """Run the handler; while a server it needs is away, hold the message and wait."""
        held = 0
        while True:
            if self._gate is not None:
                await self._gate.wait_open()
            error = await self._try(incoming)
            if error is None or not self._away(error):
                return error
            held += 1
            gated = self._gate is not None and self._gate.is_away(error)
            if gated:
                assert self._gate is not None
                self._gate.close(error)
            else:
                self._repeats.log(
                    log.warning,
                    ("away", type(error)),
                    "held: a server is away",
                    role=self._name,
                    message_id=incoming.message_id,
                    error=str(error),
                )
            if held > 1 or not gated:
                # No gate to wait for (the broker refusing the handler's publishes), or
                # the gate opened yet the handler still found the server away (a pooled
                # connection that died with it): never faster than this.
                await asyncio.sleep(backoff(held, 0.5, 30.0))

    def _away(self, error: BaseException) -> bool:
        if isinstance(error, PartsFailed):
            return False  # each part is settled on its own, outages included
        if isinstance(error, Away):
            return True
        return self._gate is not None and self._gate.is_away(error)

    async def _try(self, incoming: Incoming) -> Exception | None:
        """Run the handler (retrying a transient failure in process); what it raised last."""
        try:
            try:
                await self._handler(incoming)  # the common case pays for no retry machinery
            except TransientError as first:
                if (
                    self._away(first)
                    or not _soon_enough(first, self._retry.seconds)
                    or self._retry.attempts < 2
                ):
                    raise
                await self._retry_in_process(incoming, first)
        except Exception as exc:
            return exc
        return None

    async def _settle_part(
        self, part: Incoming, error: Exception, content_type: str | None
    ) -> bool:
        """A failed part of a message, from now on a message of its own; False: not moved."""
        if self._away(error):
            last = await self._through_outages(part)
            if last is None:
                return True
            error = last
        if isinstance(error, TransientError) and not isinstance(error, Away):
            last = await self._try(part) if _soon_enough(error, self._retry.seconds) else error
            if last is None:
                return True
            error = last
        if isinstance(error, PermanentError | TransientError):
            return await self._move(part, error, content_type)
        self._bug(part.message_id, error)
        return False

    async def _retry_in_process(self, incoming: Incoming, first: TransientError) -> None:
        """The quick retries after a first transient failure: tenacity, with a stop and a budget."""
        budget = self._retry
        await asyncio.sleep(min(max(budget.first_wait, first.retry_after or 0.0), budget.seconds))
        async for trying in AsyncRetrying(
            retry=retry_if_exception(
                lambda e: _soon_enough(e, budget.seconds) and not self._away(e)
            ),
            stop=stop_after_attempt(budget.attempts - 1) | stop_after_delay(budget.seconds),
            wait=_honour_retry_after(
                wait_exponential(multiplier=budget.first_wait, max=budget.max_wait)
                + wait_random(0, budget.first_wait),
                budget.seconds,
            ),
            reraise=True,
        ):
            with trying:
                metrics.retried(self._queue.name, "in_process")
                await self._handler(incoming)

    async def _move(
        self, incoming: Incoming, error: PermanentError | TransientError, content_type: str | None
    ) -> bool:
        """Send a failed message on: to the dead letters or a delay tier; False: leave it."""
        if isinstance(error, PermanentError):
            return await self._dead_letter(incoming, str(error), content_type)
        if not self._retry.tiers:
            log.warning(
                "requeued", role=self._name, message_id=incoming.message_id, error=str(error)
            )
            return False
        attempt = incoming.attempt
        if attempt >= self._retry.max_attempts:
            reason = f"gave up after {attempt} attempts; the last: {error}"
            return await self._dead_letter(incoming, reason, content_type)
        retry_after = error.retry_after if isinstance(error, TransientError) else None
        tier = self._topology.tier_for(attempt, retry_after)
        headers = dict(incoming.headers) | {ATTEMPT: attempt + 1}
        exchange = self._topology.tier_exchange(tier).name
        if not await self._publish(
            incoming, exchange, self._queue.routing_key, headers, content_type
        ):
            return False
        metrics.retried(self._queue.name, "tier")
        log.info(
            "delayed",
            role=self._name,
            message_id=incoming.message_id,
            attempt=attempt,
            delay_s=tier,
            error=str(error),
        )
        return True

    async def _dead_letter(self, incoming: Incoming, reason: str, content_type: str | None) -> bool:
        headers = dict(incoming.headers) | {
            "x-hub-reason": reason[:2000],
            "x-hub-queue": self._queue.name,
            "x-hub-dead-at": datetime.datetime.now(datetime.UTC).isoformat(),
        }
        routing_key = self._queue.dead_letter_routing_key or self._queue.routing_key
        dead = self._topology.dead_exchange.name
        if not await self._publish(incoming, dead, routing_key, headers, content_type):
            return False
        metrics.dead_lettered(self._queue.name)
        log.warning("dead-lettered", role=self._name, message_id=incoming.message_id, reason=reason)
        return True

    async def _publish(
        self,
        incoming: Incoming,
        exchange: str,
        routing_key: str,
        headers: dict[str, Any],
        content_type: str | None,
    ) -> bool:
        """Publish a copy, confirmed; False if that failed (the caller leaves the original)."""
        assert self._channel is not None
        copy = aio_pika.Message(
            incoming.body,
            headers=headers,
            message_id=incoming.message_id,
            content_type=content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            target = await self._channel.get_exchange(exchange, ensure=False)
            await target.publish(copy, routing_key, mandatory=True)
        except (*CONNECT_ERRORS, aio_pika.exceptions.DeliveryError) as exc:
            # Not moved: leave it in the queue; it comes back, or the limit takes it.
            log.error("republish failed", role=self._name, exchange=exchange, error=repr(exc))
            return False
        return True


def _attempt(headers: Mapping[str, Any]) -> int:
    value = headers.get(ATTEMPT, 1)
    return value if isinstance(value, int) and value > 0 else 1


def _soon_enough(exc: BaseException, budget: float) -> bool:
    """A transient failure worth retrying in process: not one asked to wait past the budget."""
    if not isinstance(exc, TransientError):
        return False
    return exc.retry_after is None or exc.retry_after <= budget


def _honour_retry_after(
    backoff: Callable[[RetryCallState], float], budget: float
) -> Callable[[RetryCallState], float]:
    """Wait as the backoff says, or as long as the partner asked, within the budget."""

    def wait(state: RetryCallState) -> float:
        delay = backoff(state)
        outcome = state.outcome
        if outcome is not None and outcome.failed:
            asked = getattr(outcome.exception(), "retry_after", None)
            if isinstance(asked, int | float) and asked > delay:
                delay = min(float(asked), budget)
        return delay

    return wait


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
