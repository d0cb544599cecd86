"""A partner's call holds nothing in PostgreSQL; a record claimed elsewhere waits, once.

The delivery worker claims the records of a batch, calls the partner with no
connection or transaction held, then writes and releases; a rate-limit wait
comes before a request's timeout, not inside it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from hub.delivery import worker
from hub.settings import Settings
from hub.store import deliveries
from hub.store.pool import DatabaseError, Pool, connection_of, create_pool
from tests.conftest import eventually
from tests.delivery.conftest import DeliveryHub, Partner, StartHub, prospect_xml, staff_xml


def backends(pool: Pool) -> list[int]:
    """The server PIDs of a pool's open connections (asyncpg has no public way to list them)."""
    holders = pool._holders  # private: a test's look inside
    return [h._con.get_server_pid() for h in holders if h._con is not None]


async def settled(hub: DeliveryHub) -> None:
    """Once the workers have written what they delivered and released their claims."""

    async def no_claims() -> bool:
        return not await hub.pool.fetchval(
            "SELECT count(*) FROM deliveries WHERE claimed_by IS NOT NULL"
        )

    await eventually(no_claims)


async def held(hub: DeliveryHub) -> tuple[list[Any], list[Any]]:
    """The hub's connections idle in a transaction, and the locks they hold."""
    pids = backends(delivery_pool(hub)) + backends(hub.pool)
    in_transaction = await hub.pool.fetch(
        "SELECT pid, state, query FROM pg_stat_activity"
        " WHERE pid = ANY($1::int[]) AND state LIKE 'idle in transaction%'",
        pids,
    )
    locks = await hub.pool.fetch(
        "SELECT pid, locktype, mode FROM pg_locks"
        " WHERE pid = ANY($1::int[]) AND locktype IN ('advisory', 'tuple', 'transactionid')",
        pids,
    )
    return in_transaction, locks


def delivery_pool(hub: DeliveryHub) -> Pool:
    pool = hub._components[1]._pool  # the DeliveryService's own (private) pool
    assert pool is not None
    return pool  # type: ignore[no-any-return]


async def test_a_slow_partner_holds_no_connection_transaction_or_lock(start_hub: StartHub) -> None:
    settings = '{ key_env = "HUB_TEST_PARTNER_TOKEN", timeout = 10 }'
    hub = await start_hub([Partner("slow", ["user.save"], settings=settings)])
    fake = hub.fake("slow")
    fake.delay = 4.0
    record = await hub.post("user", prospect_xml("R-1"))
    await asyncio.sleep(1.5)  # the delivery is waiting for the partner's answer
    assert not fake.users

    assert await held(hub) == ([], [])
    # What keeps a second worker off the record meanwhile: the claim, a row.
    claim = await hub.pool.fetchrow(
        "SELECT claimed_by, claimed_until > now() AS running FROM deliveries"
        " WHERE partner = 'slow' AND uuid = $1",
        uuid.UUID(record),
    )
    assert claim is not None
    assert claim["claimed_by"]
    assert claim["running"]

    await fake.wait_for_users(1, timeout=10)

    async def released() -> bool:
        row = await hub.pool.fetchrow(
            "SELECT claimed_by, delivered_version FROM deliveries WHERE partner = 'slow'"
        )
        return row is not None and row["claimed_by"] is None and row["delivered_version"] == 1

    await eventually(released)


async def test_a_slow_list_refresh_holds_no_transaction_or_lock(start_hub: StartHub) -> None:
    settings = '{ key_env = "HUB_TEST_PARTNER_TOKEN", timeout = 10 }'
    partner = Partner("slow", ["user.save", "staff.list"], extras=["owner"], settings=settings)
    hub = await start_hub([partner])
    fake = hub.fake("slow")
    staff_id = fake.add_staff("K-slow", "sam@example.com")
    await hub.post("staff", staff_xml("S-1", "sam@example.com"))
    fake.delay = 4.0
    await hub.post("user", prospect_xml("R-1", owner="S-1"))
    await asyncio.sleep(1.5)  # the staff list is being fetched
    assert not [r for r in fake.requests if r.method == "GET"]

    assert await held(hub) == ([], [])
    assert await hub.pool.fetchval("SELECT count(*) FROM list_claims") == 1

    await fake.wait_for_users(1, timeout=15)
    assert next(iter(fake.users.values()))["ownerId"] == staff_id
    assert await hub.pool.fetchval("SELECT count(*) FROM list_claims") == 0


async def test_a_record_claimed_by_another_worker_waits_for_it(start_hub: StartHub) -> None:
    hub = await start_hub([Partner("crm", ["user.save"])])
    fake = hub.fake("crm")
    record = uuid.UUID(await hub.post("user", prospect_xml("R-1")))
    await fake.wait_for_users(1)
    await settled(hub)

    # Another worker (it died, say) holds the record at crm for 3 s more.
    assert await deliveries.claim(hub.pool, "crm", [record], "elsewhere", 3.0) == {record}
    posted = time.monotonic()
    await hub.post("user", prospect_xml("R-1", firstname="Grace"))

    async def updated() -> bool:
        return fake.users[str(record)]["firstName"] == "Grace"

    await eventually(updated, within=20)
    assert time.monotonic() - posted >= 2.5  # not before the claim ran out
    assert fake.creates[str(record)] == 1

    async def written() -> list[str]:  # the partner has it a moment before the hub notes it
        rows = await hub.pool.fetch("SELECT outcome FROM delivery_attempts ORDER BY id")
        return [r["outcome"] for r in rows] if len(rows) >= 2 else []

    assert await eventually(written) == ["delivered", "delivered"]
    assert await hub.pool.fetchval("SELECT count(*) FROM dead_letters") == 0


async def test_claims_exclude_each_other_until_released_or_run_out(start_hub: StartHub) -> None:
    hub = await start_hub([Partner("crm", ["user.save"])])
    record = uuid.UUID(await hub.post("user", prospect_xml("R-1")))
    await hub.fake("crm").wait_for_users(1)
    await settled(hub)
    missing = uuid.uuid4()

    assert await deliveries.claim(hub.pool, "crm", [record, missing], "a", 30) == {record}
    assert await deliveries.claim(hub.pool, "crm", [record], "b", 30) == set()
    assert await deliveries.claim(hub.pool, "crm", [record], "a", 30) == {record}  # renewed
    await deliveries.release(hub.pool, "crm", "b", [record])  # not b's: nothing
    assert await deliveries.claim(hub.pool, "crm", [record], "b", 30) == set()
    await deliveries.release(hub.pool, "crm", "a", [record])
    assert await deliveries.claim(hub.pool, "crm", [record], "b", 0.2) == {record}
    await asyncio.sleep(0.3)  # b's lease runs out (b died)
    assert await deliveries.claim(hub.pool, "crm", [record], "c", 30) == {record}


async def test_a_rate_limit_wait_longer_than_the_timeout_is_no_timeout(
    start_hub: StartHub,
) -> None:
    settings = '{ key_env = "HUB_TEST_PARTNER_TOKEN", timeout = 1 }'
    partner = Partner("paced", ["user.save"], rate_per_second=0.5, settings=settings)
    hub = await start_hub([partner])
    started = time.monotonic()
    await asyncio.gather(*(hub.post("user", prospect_xml(f"R-{n}")) for n in range(3)))
    await hub.fake("paced").wait_for_users(3, timeout=30)
    assert time.monotonic() - started >= 3.5  # two waits of 2 s, each longer than the timeout

    async def written() -> list[str]:
        rows = await hub.pool.fetch("SELECT outcome FROM delivery_attempts ORDER BY id")
        return [r["outcome"] for r in rows] if len(rows) >= 3 else []

    assert await eventually(written) == ["delivered"] * 3


async def test_a_write_that_fails_after_the_partner_answered_is_tried_again_not_the_partner(
    start_hub: StartHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = await start_hub([Partner("crm", ["user.save"])])
    finish = deliveries.finish
    failures = [DatabaseError("the database is unavailable (for the test)")] * 2

    async def failing_twice(*args: Any) -> None:
        if failures:
            raise failures.pop()
        await finish(*args)

    monkeypatch.setattr(deliveries, "finish", failing_twice)
    record = await hub.post("user", prospect_xml("R-1"))
    await hub.fake("crm").wait_for_users(1)
    await settled(hub)
    assert not failures
    await asyncio.sleep(1)  # a second send would come now
    saves = [r for r in hub.fake("crm").requests if r.method == "PUT"]
    assert len(saves) == 1
    row = await hub.pool.fetchrow(
        "SELECT partner_id, delivered_version FROM deliveries WHERE partner = 'crm' AND uuid = $1",
        uuid.UUID(record),
    )
    assert row is not None
    assert (row["partner_id"], row["delivered_version"]) == (hub.fake("crm").partner_ids[record], 1)


async def test_a_claim_is_renewed_while_the_partner_is_called(
    start_hub: StartHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "LEASE", 1.0)  # renewed every 0.25 s
    settings = '{ key_env = "HUB_TEST_PARTNER_TOKEN", timeout = 10 }'
    hub = await start_hub([Partner("slow", ["user.save"], settings=settings)])
    hub.fake("slow").delay = 3.0
    record = uuid.UUID(await hub.post("user", prospect_xml("R-1")))
    await asyncio.sleep(2.0)  # twice the lease into the call
    assert await deliveries.claim(hub.pool, "slow", [record], "another worker", 30) == set()
    await hub.fake("slow").wait_for_users(1, timeout=10)
    await settled(hub)


async def test_a_pool_that_stays_exhausted_is_the_database_away(settings: Settings) -> None:
    pool = await create_pool(settings.database_url, settings.namespace, max_size=1)
    try:
        async with connection_of(pool):
            with pytest.raises(DatabaseError, match=r"no database connection free within 0\.2 s"):
                async with connection_of(pool, timeout=0.2):
                    pass
        async with connection_of(pool, timeout=0.2) as connection:  # free again
            assert await connection.fetchval("SELECT 1") == 1
    finally:
        await pool.close()
