"""The store's upsert: versions only rise, redeliveries and old saves change nothing."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator

import pytest

from hub.message import Inbound
from hub.settings import Settings
from hub.store import records
from hub.store.pool import Pool, create_pool
from tests.fixtures_tenancy import inbound

T0 = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[Pool]:
    pool = await create_pool(settings.database_url, settings.namespace)
    try:
        yield pool
    finally:
        await pool.close()


def save(firstname: str, seconds: float, record_id: str = "R-1") -> Inbound:
    return inbound(
        record_id,
        body={"userInfo": {"firstname": firstname}},
        received_at=T0 + datetime.timedelta(seconds=seconds),
    )


async def outcomes(pool: Pool, *saves: Inbound) -> list[tuple[str, int]]:
    return [(a.outcome, a.version) for a in await records.apply(pool, saves)]


async def test_versions_rise_only_when_the_content_changes(pool: Pool) -> None:
    assert await outcomes(pool, save("Ada", 1)) == [("created", 1)]
    assert await outcomes(pool, save("Ada", 2)) == [("unchanged", 1)]
    assert await outcomes(pool, save("Augusta", 3), save("Ada", 4)) == [
        ("changed", 2),
        ("changed", 3),
    ]


async def test_a_redelivered_save_changes_nothing(pool: Pool) -> None:
    first = save("Ada", 1)
    await outcomes(pool, first)
    await outcomes(pool, save("Augusta", 2))
    assert await outcomes(pool, first) == [("redelivered", 1)]
    stored = await records.get(pool, first.uuid)
    assert stored is not None
    assert (stored.version, stored.body["userInfo"]["firstname"]) == (2, "Augusta")


async def test_an_older_save_never_overwrites_a_newer_one(pool: Pool) -> None:
    await outcomes(pool, save("Newer", 10))
    assert await outcomes(pool, save("Older", 5)) == [("stale", 1)]
    stored = await records.get(pool, save("x", 0).uuid)
    assert stored is not None
    assert stored.body["userInfo"]["firstname"] == "Newer"


async def test_concurrent_batches_of_the_same_records_do_not_deadlock(pool: Pool) -> None:
    ids = [f"R-{n}" for n in range(20)]
    batches = [
        [save(f"v{b}", b * 0.001 + n * 0.1, record_id) for n, record_id in enumerate(order)]
        for b, order in enumerate([ids, ids[::-1], ids[5:] + ids[:5], ids[::2] + ids[1::2]])
    ]
    results = await asyncio.gather(*(records.apply(pool, batch) for batch in batches))
    assert sum(len(r) for r in results) == 80
    count = await pool.fetchval("SELECT count(*) FROM records")
    assert count == 20


async def test_a_batch_of_several_records_keeps_each_records_order(pool: Pool) -> None:
    await outcomes(pool, save("Old", 10, "R-2"))
    assert await outcomes(
        pool,
        save("Ada", 1, "R-1"),
        save("Late", 5, "R-2"),
        save("Bea", 2, "R-3"),
        save("Augusta", 3, "R-1"),
        save("Bea", 4, "R-3"),
    ) == [("created", 1), ("stale", 1), ("created", 1), ("changed", 2), ("unchanged", 1)]
    rows = await pool.fetch("SELECT outcome FROM receipts ORDER BY received_at")
    assert [r["outcome"] for r in rows] == [
        "created",  # R-1 at 1
        "created",  # R-3 at 2
        "changed",  # R-1 at 3
        "unchanged",  # R-3 at 4
        "stale",  # R-2 at 5, after the save at 10
        "created",  # R-2 at 10
    ]
