"""Whether the database answers, as every consumer of one process sees it.

The first handler that meets the database away (`pool.is_away`) closes the
gate; from then on the process's consumers hold the messages they have
(unacked, no attempt spent, nothing dead-lettered) and start no other, and
one task probes the database with backoff and jitter until it answers, and
answers for writing (a standby, or a primary demoted by a failover, is
still away). Then the gate opens and the held messages are handled again.
`/readyz` reads the same gate.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from hub.pacing import Repeats, backoff
from hub.store.migrate import schema_problem
from hub.store.pool import Pool, is_away

log = structlog.get_logger(__name__)

PROBE_TIMEOUT = 5.0


class DatabaseGate:
    """Open while the database answers; closed from a handler's "away" until a probe says back."""

    def __init__(
        self,
        pool: Pool,
        namespace: str,
        *,
        first_wait: float = 0.5,
        max_wait: float = 5.0,
    ) -> None:
        self._pool = pool
        self._namespace = namespace
        self._first_wait = first_wait
        self._max_wait = max_wait
        self._open = asyncio.Event()
        self._open.set()
        self._prober: asyncio.Task[None] | None = None
        self._since = 0.0
        self._repeats = Repeats(30.0)

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def is_away(self, exc: BaseException) -> bool:
        return is_away(exc)

    def close(self, cause: BaseException) -> None:
        """The database is away: hold everything until a probe finds it back."""
        if not self._open.is_set():
            return
        self._open.clear()
        self._since = time.monotonic()
        log.warning("database away: holding messages", error=_short(cause))
        self._prober = asyncio.create_task(self._probe_until_back(), name="database-probe")

    async def wait_open(self) -> None:
        await self._open.wait()

    async def stop(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)

    async def _probe_until_back(self) -> None:
        tries = 0
        while True:
            tries += 1
            await asyncio.sleep(backoff(tries, self._first_wait, self._max_wait))
            try:
                await probe(self._pool, self._namespace)
            except Exception as exc:  # any failure means "not yet"
                self._repeats.log(
                    log.warning, type(exc), "database still away", tries=tries, error=_short(exc)
                )
                continue
            log.info("database back", away_s=round(time.monotonic() - self._since, 1), tries=tries)
            # Connections opened before the outage are dead: replace them on their next use.
            await self._pool.expire_connections()
            self._open.set()
            return


async def probe(pool: Pool, namespace: str) -> None:
    """Raise unless the database answers, for writing, with the code's schema, in time."""
    async with asyncio.timeout(PROBE_TIMEOUT), pool.acquire() as connection:
        if await connection.fetchval("SHOW transaction_read_only") != "off":
            raise NotServing("the database answers read-only (a standby)")
        problem = await schema_problem(connection, namespace)
        if problem is not None:
            raise NotServing(problem)


class NotServing(Exception):
    """The database answers, but cannot serve the hub yet."""


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
