"""The connection pool, bound to the namespace's schema, and error mapping.

`database_errors()` turns a database that cannot be reached into
TransientError (retry later) and anything else asyncpg raises into a plain
HubError subclass the callers can map; queries run inside it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from hub.errors import TransientError

Pool = asyncpg.Pool
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
)


class DatabaseError(TransientError):
    """The database could not be reached or did not answer in time."""


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


async def create_pool(url: str, namespace: str, *, min_size: int = 1, max_size: int = 10) -> Pool:
    """A pool whose connections see the namespace's schema first."""
    async with database_errors():
        return await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            init=_init,
            reset=_keep,
            timeout=5,
            command_timeout=30,
            server_settings={"search_path": namespace, "application_name": "hub"},
        )


@asynccontextmanager
async def database_errors() -> AsyncIterator[None]:
    try:
        yield
    except _UNREACHABLE as exc:
        raise DatabaseError(f"the database is unavailable: {exc!r}") from exc


# How long a query waits for a free connection: a pool that stays exhausted (or a
# database that does not answer) is "the database is away", not a wait without end.
ACQUIRE_TIMEOUT = 10.0


@asynccontextmanager
async def connection_of(
    pool: Pool,
    timeout: float = ACQUIRE_TIMEOUT,  # noqa: ASYNC109 - asyncpg's own acquire timeout, mapped
) -> AsyncIterator[Connection]:
    """A connection of `pool` within `timeout` seconds, else DatabaseError; queries inside
    are mapped as `database_errors()` maps them."""
    async with database_errors():
        try:
            acquired = await pool.acquire(timeout=timeout)
        except TimeoutError as exc:
            raise DatabaseError(f"no database connection free within {timeout:g} s") from exc
        try:
            yield acquired
        finally:
            await pool.release(acquired)
