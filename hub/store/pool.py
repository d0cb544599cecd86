"""The connection pool, bound to the namespace's schema, and error mapping.

`database_errors()` turns what asyncpg raises into the hub's errors, told
apart by what the caller should do:

    DatabaseAway   the database is away: unreachable, connection lost,
                   shutting down or starting up, read-only (a standby, or a
                   primary demoted by a failover), too many connections,
                   no pooled connection within the pool's wait, a query
                   cancelled or timed out. Consumers hold their messages
                   and wait for it (`hub/store/health.py`); nothing is
                   spent, nothing is dead-lettered.
    DatabaseError  a conflict worth retrying at once (serialization
                   failure, deadlock).
    (unchanged)    anything else is a bug, or a schema that does not match
                   the code: it propagates as asyncpg raised it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from hub.errors import Away, TransientError

Pool = asyncpg.Pool
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

# How long a query waits for a pooled connection before the database counts as away.
ACQUIRE_TIMEOUT = 10.0

_AWAY = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,  # 08: connection lost or refused
    asyncpg.exceptions.OperatorInterventionError,  # 57: shutting down, starting, cancelled
    asyncpg.exceptions.InsufficientResourcesError,  # 53: too many connections, disk full
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # 25006: a standby, or demoted
    asyncpg.exceptions.InterfaceError,  # the connection closed under the query
)
_CONFLICT = (
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
)


class DatabaseError(TransientError):
    """The database could not do it now; trying again may work."""


class DatabaseAway(DatabaseError, Away):
    """The database is away: wait for it to answer again."""


def is_away(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) says the database is away."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, (DatabaseAway, *_AWAY)):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


async def _keep(connection: asyncpg.Connection) -> None:
    """Reset on release only what can be left: the hub keeps no session state (its
    advisory locks are transaction locks), so asyncpg's full reset would be a round
    trip per checkout for nothing; a transaction left open (a cancelled task) is not."""
    if connection.is_in_transaction():
        await connection.reset()


async def _init(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )


class _Pool(asyncpg.Pool):
    """asyncpg's pool, whose every acquire (`fetch`, `execute`... too) waits at most
    ACQUIRE_TIMEOUT: a pool that no connection comes back to is a database away,
    not a task that waits for ever."""

    def acquire(self, *, timeout: float | None = None):  # type: ignore[no-untyped-def]
        return super().acquire(timeout=ACQUIRE_TIMEOUT if timeout is None else timeout)


async def create_pool(url: str, namespace: str, *, min_size: int = 1, max_size: int = 10) -> Pool:
    """A pool whose connections see the namespace's schema first."""
    async with database_errors():
        return await _Pool(
            url,
            min_size=min_size,
            max_size=max_size,
            max_queries=50000,
            max_inactive_connection_lifetime=300.0,
            init=_init,
            reset=_keep,
            loop=None,
            connection_class=asyncpg.Connection,
            record_class=asyncpg.Record,
            timeout=5,
            command_timeout=30,
            server_settings={"search_path": namespace, "application_name": "hub"},
        )


@asynccontextmanager
async def database_errors() -> AsyncIterator[None]:
    try:
        yield
    except DatabaseError:
        raise
    except _AWAY as exc:
        raise DatabaseAway(f"the database is unavailable: {exc!r}") from exc
    except _CONFLICT as exc:
        raise DatabaseError(f"the database refused a conflicting update: {exc!r}") from exc


@asynccontextmanager
async def connection_of(
    pool: Pool,
    timeout: float = ACQUIRE_TIMEOUT,  # noqa: ASYNC109 - asyncpg's own acquire timeout, mapped
) -> AsyncIterator[Connection]:
    """A connection of `pool` within `timeout` seconds, else DatabaseAway; queries inside
    are mapped as `database_errors()` maps them."""
    async with database_errors():
        try:
            acquired = await pool.acquire(timeout=timeout)
        except TimeoutError as exc:
            raise DatabaseAway(f"no database connection free within {timeout:g} s") from exc
        try:
            yield acquired
        finally:
            await pool.release(acquired)
