"""A partner's queue at its maximum length holds the router, it does not dead-letter.

Before: the router's job publish was refused (reject-publish), the router
requeued the inbox message, and the inbox's delivery limit (10) moved
records answered 200 into `<ns>.inbox.dead`. Now the router holds the
message (unacked, backing off, no in-process retries spent) until the
partner's queue takes the jobs.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

import aio_pika
import aiohttp

from hub.broker.consumer import RetryBudget
from hub.delivery import job as job_message
from hub.router import RouterService
from hub.settings import Settings
from hub.tenancy import load
from hub.wiring import topology
from tests.conftest import AMQP_URL, Hub, delete_topology, eventually
from tests.delivery.conftest import prospect_xml
from tests.fixtures_tenancy import INTOUCH_KEY
from tests.processes import one_partner_tenancy

AUTH = {"Authorization": f"Bearer {INTOUCH_KEY}", "Content-Type": "application/xml"}
RECORDS = 20


async def test_a_full_partner_queue_holds_the_router(
    settings: Settings, tmp_path: Path, channel: aio_pika.abc.AbstractChannel
) -> None:
    tenancy_file = tmp_path / "tenancy.toml"
    tenancy_file.write_text(one_partner_tenancy("http://127.0.0.1:9"))
    tenancy = load(tenancy_file, os.environ | {"HUB_TEST_PARTNER_TOKEN": "t"})
    # No delivery worker: crm's queue takes 2 messages, then refuses.
    settings = replace(settings, queue_max_length=2, ingress_linger=0.0)
    shape = topology(settings, tenancy)
    hub = Hub(settings, tenancy)
    # Quick in-process retries, so that a requeue (the old way) shows within the test.
    hub.router = RouterService(settings, tenancy, RetryBudget(attempts=2, seconds=1))
    try:
        async with hub, aiohttp.ClientSession() as http:
            for n in range(RECORDS):  # one inbox message, so one job message, each
                async with http.post(
                    f"{hub.url}/user", data=prospect_xml(f"F-{n}"), headers=AUTH
                ) as r:
                    assert r.status == 200, await r.text()
            # Requeued (the old way), the inbox message would be dead in ~10 s.
            await asyncio.sleep(10)

            async def count(name: str) -> int:
                queue = await channel.declare_queue(name, passive=True)
                return int(queue.declaration_result.message_count or 0)

            assert await count(shape.inbox_dead.name) == 0
            # Its bound, and some over it (a quorum queue checks its length after taking
            # a message, so concurrent publishes overshoot), but not every job: some held.
            assert await count(shape.deliver("crm").name) < RECORDS

            # The partner's queue drains: the held jobs go, every record's.
            deliver = await channel.get_queue(shape.deliver("crm").name)
            routed: set[object] = set()

            async def all_routed() -> bool:
                while (message := await deliver.get(fail=False)) is not None:
                    routed.update(j.uuid for j in job_message.decode(message.body))
                    await message.ack()
                return len(routed) == RECORDS

            await eventually(all_routed, within=90, interval=0.2)
            assert await count(shape.inbox_dead.name) == 0
            assert await count(shape.inbox.name) == 0
    finally:
        await delete_topology(AMQP_URL, shape)
