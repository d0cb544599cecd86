"""The raw-publish baseline: aio-pika publishing with confirms, nothing else.

Publishes `records` persistent 1 KB messages through the default exchange to
a temporary durable quorum queue `<namespace>.bench.<runid>`, keeping at most
`in_flight` unconfirmed, each publish awaiting its own confirm: the ceiling of
the ingress's broker path on this machine. The queue is deleted afterwards,
whatever happened; nothing else on the broker is touched.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aio_pika
import structlog
from aio_pika.abc import AbstractConnection, AbstractExchange

from hub.bench.results import Sample
from hub.broker.connection import CONNECT_ERRORS, Nodes
from hub.settings import Settings

log = structlog.get_logger(__name__)

_ERRORS = (*CONNECT_ERRORS, aio_pika.exceptions.DeliveryError, RuntimeError)


def queue_name(settings: Settings, run_id: str) -> str:
    return f"{settings.namespace}.bench.{run_id}"


async def publish(
    settings: Settings, run_id: str, records: int, in_flight: int = 100, size: int = 1024
) -> Sample:
    """Publish `records` messages of `size` bytes with confirms and measure."""
    name = queue_name(settings, run_id)
    connection = await Nodes(settings.amqp_urls).connect(f"hub-bench-{run_id}")
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        try:
            return await _publish_all(channel.default_exchange, name, records, in_flight, size)
        finally:
            await delete_queue(connection, name)
    finally:
        await connection.close()


async def _publish_all(
    exchange: AbstractExchange, routing_key: str, records: int, in_flight: int, size: int
) -> Sample:
    sample = Sample(records)
    failures: Counter[str] = sample.failures
    slots = asyncio.Semaphore(in_flight)
    body = b"x" * size

    async def one(index: int) -> None:
        message = aio_pika.Message(
            body, message_id=str(index), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        )
        since = time.perf_counter()
        try:
            await exchange.publish(message, routing_key, mandatory=True)
        except _ERRORS as exc:
            failures[type(exc).__name__] += 1
        else:
            sample.latencies.append(time.perf_counter() - since)
        finally:
            slots.release()

    sends: list[asyncio.Task[None]] = []
    sample.started = time.monotonic()
    for index in range(records):
        await slots.acquire()
        sends.append(asyncio.create_task(one(index)))
    await asyncio.gather(*sends)
    sample.finished = time.monotonic()
    return sample


async def delete_queue(connection: AbstractConnection, name: str) -> None:
    """Delete the queue on a fresh channel: the publishing one may have been closed by an error."""
    try:
        async with asyncio.timeout(10):
            channel = await connection.channel()
            await channel.queue_delete(name)
            await channel.close()
    except (TimeoutError, *CONNECT_ERRORS) as exc:
        log.warning(
            "could not delete a benchmark queue: delete it by hand", queue=name, error=repr(exc)
        )
