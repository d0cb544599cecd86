"""Database errors told apart: "away" is waited out, a conflict retried, a bug is a bug.

Before, a database that answered read-only (a primary demoted by a
failover), one shutting down or one with too many connections took the bug
path: requeued at once until the delivery limit dead-lettered the batch.
The last test demotes a private server to read-only under a running router:
the router holds its messages until the server takes writes again, and the
records are stored, with nothing dead-lettered.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import aio_pika
import aiohttp
import asyncpg
import pytest

from hub.errors import Away
from hub.settings import Settings
from hub.store.migrate import migrate
from hub.store.pool import DatabaseAway, DatabaseError, create_pool, database_errors, is_away
from hub.tenancy import Tenancy
from tests.conftest import AMQP_URL, Hub, eventually
from tests.fixtures_tenancy import INTOUCH_KEY, user_xml
from tests.pgserver import private_postgres

AUTH = {"Authorization": f"Bearer {INTOUCH_KEY}", "Content-Type": "application/xml"}


@pytest.mark.parametrize(
    "raised",
    [
        asyncpg.exceptions.ReadOnlySQLTransactionError("read-only transaction"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        ConnectionRefusedError(111, "refused"),
        TimeoutError(),
    ],
)
async def test_the_database_away_in_every_form(raised: Exception) -> None:
    with pytest.raises(DatabaseAway) as caught:
        async with database_errors():
            raise raised
    assert isinstance(caught.value, Away)
    assert is_away(caught.value)
    assert is_away(raised)  # raw, as a pool shortcut raises it


async def test_conflicts_are_retried_and_bugs_stay_bugs() -> None:
    with pytest.raises(DatabaseError) as conflict:
        async with database_errors():
            raise asyncpg.exceptions.SerializationError("could not serialize")
    assert not is_away(conflict.value)
    with pytest.raises(asyncpg.exceptions.UndefinedTableError):
        async with database_errors():
            raise asyncpg.exceptions.UndefinedTableError('relation "records" does not exist')


async def test_a_pool_with_no_connection_free_in_time_is_away(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every acquire waits at most ACQUIRE_TIMEOUT, the pool's shortcuts (`fetchval`...)
    included, which give no timeout of their own."""
    monkeypatch.setattr("hub.store.pool.ACQUIRE_TIMEOUT", 0.2)
    async with private_postgres() as database:
        pool = await create_pool(database.url, "public", min_size=0, max_size=1)
        try:
            async with pool.acquire():
                started = time.monotonic()
                with pytest.raises(TimeoutError) as caught:
                    async with asyncio.timeout(5):  # without the bound: a wait for ever
                        await pool.fetchval("SELECT 1")
                assert time.monotonic() - started < 2, "the acquire had no timeout"
                assert is_away(caught.value)
        finally:
            await pool.close()


async def test_a_read_only_database_holds_the_router(settings: Settings, tenancy: Tenancy) -> None:
    async with private_postgres() as database:
        await migrate(database.url, settings.namespace)
        here = replace(settings, database_url=database.url)
        admin = await asyncpg.connect(database.url)
        try:
            async with Hub(here, tenancy) as hub, aiohttp.ClientSession() as http:
                await admin.execute("ALTER SYSTEM SET default_transaction_read_only = on")
                await admin.execute("SELECT pg_reload_conf()")
                await asyncio.sleep(0.5)
                for n in range(5):
                    async with http.post(
                        f"{hub.url}/user", data=user_xml(f"RO-{n}"), headers=AUTH
                    ) as r:
                        assert r.status == 200
                await asyncio.sleep(3)  # the router meets read-only, and holds
                stored = f"SELECT count(*) FROM {settings.namespace}.records"
                assert await admin.fetchval(stored) == 0
                assert hub.router.gate is not None
                assert not hub.router.gate.is_open

                await admin.execute("ALTER SYSTEM SET default_transaction_read_only = off")
                await admin.execute("SELECT pg_reload_conf()")

                async def all_stored() -> bool:
                    return bool(await admin.fetchval(stored) == 5)

                await eventually(all_stored, within=30)
            connection = await aio_pika.connect(AMQP_URL)
            async with connection:
                channel = await connection.channel()
                dead = await channel.declare_queue(f"{settings.namespace}.inbox.dead", passive=True)
                assert dead.declaration_result.message_count == 0
        finally:
            await admin.close()
