"""RabbitMQ restarted while records flow to a partner: every accepted record delivered once.

Stops the machine's broker application (`rabbitmqctl stop_app`) and always
starts it again in a `finally`; the node, its config and cookie are untouched.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.delivery.conftest import AUTH, Partner, StartHub, prospect_xml
from tests.integration.test_broker_outage import rabbitmqctl

pytestmark = pytest.mark.broker_restart


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
            await rabbitmqctl("stop_app")
            await asyncio.sleep(2)
        finally:
            await rabbitmqctl("start_app")
        await asyncio.sleep(2)
        done.set()
        await asyncio.wait_for(workers, 30)

    await fake.wait_for_users(len(accepted), timeout=90)
    assert set(fake.users) == accepted
    assert max(fake.creates.values()) == 1
