"""RabbitMQ restarted while records flow to a partner: every accepted record delivered once.

Stops the machine's broker application (`rabbitmqctl stop_app`) and always
starts it again in a `finally`; the node, its config and cookie are untouched.
Skipped unless the broker under test is that node (`tests/machine_broker.py`).
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.delivery.conftest import AUTH, Partner, StartHub, prospect_xml
from tests.machine_broker import only_when_owned, stopped

pytestmark = [pytest.mark.broker_restart, only_when_owned]


async def test_broker_restart_under_load_loses_nothing(start_hub: StartHub) -> None:
    hub = await start_hub([Partner("crm", ["user.save"], max_attempts=10)])
    fake = hub.fake("crm")
    accepted: set[str] = set()
    done = asyncio.Event()

    async def partner(http: aiohttp.ClientSession, worker: int) -> None:
        n = 0
        while not done.is_set():
            body = prospect_xml(f"B-{worker}-{n}")
            try:
                async with http.post(f"{hub.url}/user", data=body, headers=AUTH) as r:
                    if r.status == 200:
                        accepted.add((await r.text()).split("<uuid>")[1].split("<")[0])
                        n += 1
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.01)

    async with aiohttp.ClientSession() as http:
        workers = asyncio.gather(*(partner(http, w) for w in range(4)))
        try:
            await asyncio.sleep(1)
            async with stopped():
                await asyncio.sleep(2)
            await asyncio.sleep(2)
        finally:
            done.set()
            await asyncio.wait_for(workers, 30)

    await fake.wait_for_users(len(accepted), timeout=90)
    assert set(fake.users) == accepted
    assert max(fake.creates.values()) == 1
