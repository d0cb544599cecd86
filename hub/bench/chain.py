"""The bare chain: publish with confirms, consume, PUT to the partner, ack; nothing else.

The ceiling of the hub's whole path on this machine, with none of its work
(no XML, no validation, no store, no mapping, no second queue): aio-pika
publishes persistent ~1 KB JSON users through the default exchange to a
temporary durable quorum queue, at most `in_flight` unconfirmed; a consumer
on its own connection (prefetch `prefetch`) PUTs each body as it is to the
partner's `/clubs/{club}/users/{uuid}` with one aiohttp session, and acks
after the answer. A record's UUID travels as the message id. Publisher and
consumer share this process and its event loop, as the hub's components
share theirs. The queue is deleted on exit, whatever happened.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from types import TracebackType

import aio_pika
import aiohttp
import orjson
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from hub.bench.publish import delete_queue
from hub.broker.connection import CONNECT_ERRORS, Nodes

log = structlog.get_logger(__name__)

_PUBLISH_ERRORS = (*CONNECT_ERRORS, aio_pika.exceptions.DeliveryError, RuntimeError)
SIZE = 1024


def user_json(index: int, size: int = SIZE) -> bytes:
    """A generic_json user the fake accepts, padded to about `size` bytes."""
    user = {
        "userType": "PROSPECT",
        "status": "ACTIVE",
        "firstName": "Ada",
        "lastName": f"Bench{index}",
        "birthDate": "1990-12-10",
        "gender": "F",
        "address1": "1234 Fake St",
        "city": "Springfield",
        "zipCode": "12345",
        "state": "IL",
        "country": "US",
        "email": f"bench-{index}@example.com",
        "trialStart": "2026-11-01",
        "trialEnd": "2026-11-14",
        "company": "",
    }
    user["company"] = "x" * max(size - len(orjson.dumps(user)), 0)
    return orjson.dumps(user)


class Chain:
    """The publisher, the queue and the PUTting consumer, open until the `async with` ends."""

    def __init__(
        self,
        amqp_urls: tuple[str, ...],
        queue: str,
        users_url: str,
        token: str,
        *,
        in_flight: int = 100,
        prefetch: int = 64,
    ) -> None:
        self._nodes = Nodes(amqp_urls)
        self._queue = queue
        self._users_url = users_url.rstrip("/")
        self._token = token
        self._in_flight = in_flight
        self._prefetch = prefetch
        self._connections: list[AbstractConnection] = []
        self._publishing: AbstractChannel | None = None
        self._http: aiohttp.ClientSession | None = None
        self.failures: Counter[str] = Counter()
        self._settled = 0
        self._wanted = 0
        self._all_settled = asyncio.Event()

    async def __aenter__(self) -> Chain:
        try:
            await self._open()
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()

    async def run(self, records: int, wait: float, rate: float | None = None) -> dict[str, float]:
        """Send `records` users (at `rate` a second, on a schedule, if given); when all are
        settled (or `wait` s after the last confirm), the publish start of each confirmed
        one, by UUID (`time.monotonic()`)."""
        ids = [str(uuid.uuid4()) for _ in range(records)]
        bodies = [user_json(i) for i in range(records)]
        self._settled, self._wanted = 0, records
        self._all_settled.clear()
        sent = await self._publish_all(ids, bodies, rate)
        try:
            await asyncio.wait_for(self._all_settled.wait(), wait)
        except TimeoutError:
            log.warning("bare chain: not every message settled", settled=self._settled)
        return sent

    async def _open(self) -> None:
        publishing = await self._nodes.connect("hub-bench-chain-publish")
        self._connections.append(publishing)
        self._publishing = await publishing.channel(publisher_confirms=True, on_return_raises=True)
        await self._publishing.declare_queue(
            self._queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        consuming = await self._nodes.connect("hub-bench-chain-consume")
        self._connections.append(consuming)
        channel = await consuming.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        self._http = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self._token}"},
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=10),
        )
        queue = await channel.get_queue(self._queue, ensure=False)
        await queue.consume(self._deliver)

    async def _close(self) -> None:
        # The consumer goes first, so that deleting the queue does not cancel it.
        for connection in reversed(self._connections[1:]):
            await connection.close()
        if self._connections:
            await delete_queue(self._connections[0], self._queue)
            await self._connections[0].close()
        if self._http is not None:
            await self._http.close()

    async def _publish_all(
        self, ids: list[str], bodies: list[bytes], rate: float | None
    ) -> dict[str, float]:
        assert self._publishing is not None
        exchange = self._publishing.default_exchange
        slots = asyncio.Semaphore(self._in_flight)
        sent: dict[str, float] = {}

        async def one(record: str, body: bytes) -> None:
            message = aio_pika.Message(
                body,
                message_id=record,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            since = time.monotonic()
            try:
                await exchange.publish(message, self._queue, mandatory=True)
            except _PUBLISH_ERRORS as exc:
                self.failures[f"publish {type(exc).__name__}"] += 1
                self._settle()
            else:
                sent[record] = since
            finally:
                slots.release()

        sends: list[asyncio.Task[None]] = []
        start = time.monotonic()
        for n, (record, body) in enumerate(zip(ids, bodies, strict=True)):
            if rate is not None:  # open loop: the n-th at start + n / rate
                await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            await slots.acquire()
            sends.append(asyncio.create_task(one(record, body)))
        await asyncio.gather(*sends)
        return sent

    async def _deliver(self, message: AbstractIncomingMessage) -> None:
        assert self._http is not None
        record = message.message_id or ""
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": record,
            "X-Hub-Record": record,
        }
        try:
            async with self._http.put(
                f"{self._users_url}/{record}", data=message.body, headers=headers
            ) as answer:
                await answer.read()
                if answer.status >= 300:
                    self.failures[f"partner {answer.status}"] += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.failures[f"partner {type(exc).__name__}"] += 1
        await message.ack()
        self._settle()

    def _settle(self) -> None:
        self._settled += 1
        if self._settled >= self._wanted:
            self._all_settled.set()
