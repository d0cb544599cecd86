"""One process's HTTP load generator: post prepared bodies, time every answer.

Closed loop (no rate): `connections` clients each post their next record as
soon as the previous one is answered, which measures throughput. Open loop
(a rate): records are sent on a fixed schedule whatever the answers, and a
latency runs from the scheduled send time, so a slow server cannot hide its
queueing by slowing the generator (coordinated omission). Either way at most
`connections` keep-alive connections are open, through one session.

An answer is OK only if it is a 200 whose body holds `<uuid>`; for each OK
record the sample keeps when its post started (`Sample.sent`, by record
index), so that `hub bench e2e` can follow the record to the partner. This
module never retries: a failure is counted, not repeated.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from yarl import URL

from hub.bench.results import Sample


@dataclass(frozen=True, slots=True)
class Load:
    """What one process sends: where, with which key, and how."""

    url: str
    key: str
    connections: int
    rate: float | None
    offset: float = 0.0
    timeout: float = 30.0


async def drive(load: Load, bodies: Sequence[bytes], first: int = 0) -> Sample:
    """Post every body to `load.url` and measure; the clock starts here.

    Body k is record `first + k`: that is its index in `Sample.sent`.
    """
    connector = aiohttp.TCPConnector(limit=load.connections, keepalive_timeout=60)
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=load.timeout),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    ) as session:
        poster = _Poster(session, load)
        started = time.monotonic()
        if load.rate is None:
            await _closed_loop(poster, bodies, first, load.connections)
        else:
            await _open_loop(poster, bodies, first, load.rate, load.offset)
        finished = time.monotonic()
    return Sample(
        len(bodies), poster.latencies, poster.failures, started, finished, sent=poster.sent
    )


class _Poster:
    """Posts one body and files the outcome: a latency, or a failure by kind."""

    def __init__(self, session: aiohttp.ClientSession, load: Load) -> None:
        self._session = session
        self._url = URL(load.url)
        self._headers = {
            "Authorization": f"Bearer {load.key}",
            "Content-Type": "application/xml",
        }
        self.latencies: list[float] = []
        self.failures: Counter[str] = Counter()
        self.sent: dict[int, float] = {}
        # perf_counter() + this = monotonic(), the clock other processes read too.
        self._to_monotonic = time.monotonic() - time.perf_counter()

    async def post(self, index: int, body: bytes, since: float) -> None:
        try:
            async with self._session.post(self._url, data=body, headers=self._headers) as answer:
                status = answer.status
                content = await answer.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.failures[type(exc).__name__] += 1
            return
        if status == 200 and b"<uuid>" in content:
            self.latencies.append(time.perf_counter() - since)
            self.sent[index] = since + self._to_monotonic
        elif status == 200:
            self.failures["200 without <uuid>"] += 1
        else:
            self.failures[str(status)] += 1


async def _closed_loop(
    poster: _Poster, bodies: Sequence[bytes], first: int, connections: int
) -> None:
    pending = enumerate(bodies, first)

    async def client() -> None:
        for index, body in pending:
            await poster.post(index, body, time.perf_counter())

    await asyncio.gather(*(client() for _ in range(connections)))


async def _open_loop(
    poster: _Poster, bodies: Sequence[bytes], first: int, rate: float, offset: float
) -> None:
    start = time.perf_counter() + offset
    sends: list[asyncio.Task[None]] = []
    for i, body in enumerate(bodies):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sends.append(asyncio.create_task(poster.post(first + i, body, due)))
    await asyncio.gather(*sends)
