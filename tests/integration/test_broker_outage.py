"""RabbitMQ stops while partners post: 503 once the time bound runs out, 200 after, nothing lost.

Stops the machine's broker application (`rabbitmqctl stop_app`) and always
starts it again in a `finally`; the node, its config and cookie are untouched.
Skipped unless the broker under test is that node (`tests/machine_broker.py`).
"""

from __future__ import annotations

import asyncio
import collections
import uuid

import aiohttp
import pytest

from hub.store import records
from tests.conftest import Hub, eventually
from tests.fixtures_tenancy import INTOUCH_KEY, user_xml
from tests.machine_broker import only_when_owned, stopped

pytestmark = [pytest.mark.broker_restart, only_when_owned]

AUTH = {"Authorization": f"Bearer {INTOUCH_KEY}", "Content-Type": "application/xml"}


async def test_posting_through_a_broker_outage_loses_nothing(hub: Hub) -> None:
    statuses: collections.Counter[int] = collections.Counter()
    accepted: dict[str, uuid.UUID] = {}

    async def partner(http: aiohttp.ClientSession, n: int) -> None:
        # Like a well-behaved partner: re-post what was not accepted.
        record_id = f"R-{n}"
        for _ in range(400):
            try:
                async with http.post(
                    f"{hub.url}/user", data=user_xml(record_id), headers=AUTH
                ) as r:
                    statuses[r.status] += 1
                    if r.status == 200:
                        text = await r.text()
                        accepted[record_id] = uuid.UUID(text.split("<uuid>")[1].split("<")[0])
                        return
            except aiohttp.ClientError:
                statuses[0] += 1
            await asyncio.sleep(0.05)

    done = asyncio.Event()

    async def posting(http: aiohttp.ClientSession, worker: int) -> None:
        n = 0
        while not done.is_set():
            await partner(http, 10_000 * worker + n)
            n += 1

    async with aiohttp.ClientSession() as http:
        workers = asyncio.gather(*(posting(http, w) for w in range(4)))
        try:
            await asyncio.sleep(0.5)
            async with stopped():
                # Longer than the publisher's time bound (it publishes again within it).
                await asyncio.sleep(hub.settings.publish_timeout + 1.5)
            accepted_before = len(accepted)
            await eventually(
                lambda: asyncio.sleep(0, len(accepted) > accepted_before + 20), within=60
            )
        finally:
            done.set()
            await asyncio.wait_for(workers, 60)

    assert statuses[503] > 0, "the outage was not seen"
    assert len(accepted) > 40

    pool = hub.router.pool
    assert pool is not None

    async def all_stored() -> bool:
        count = await pool.fetchval("SELECT count(*) FROM records")
        return bool(count == len(accepted))

    await eventually(all_stored, within=60)
    for record_uuid in accepted.values():
        record = await records.get(pool, record_uuid)
        assert record is not None
        assert record.version == 1
    assert await pool.fetchval("SELECT count(*) FROM records") == len(accepted)
