"""PostgreSQL stopped for 45 s under load: every record answered 200 is delivered, once.

`hub run` as a process, on the machine's RabbitMQ and a PostgreSQL server of
the test's own (`tests/pgserver.py`), delivering to a fake generic_json
partner that takes a little time per call (so that deliveries are in flight
when the database goes). Records are posted at a steady rate before, during
and after a 45 s stop of the database (`pg_ctl stop -m fast`: sessions cut).
Saves need only the broker, so every post is answered 200. While the
database is away `/readyz` says so; once it is back the hub resumes by
itself, with no operator and no replay: every record reaches the partner
with one create, nothing is in any dead-letter queue, the parked queue or
`dead_letters`, and no delivery attempt was spent on the outage. Some calls
are in flight when the database stops (the partner answers them a second
late): the partner took those records, and they are not sent again.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace
from pathlib import Path

import aio_pika
import aiohttp
import asyncpg
import pytest

from adapters.fakes.generic_json import FakeGenericJson
from hub.settings import Settings
from hub.store.migrate import migrate
from hub.tenancy import load
from hub.wiring import topology
from tests.conftest import AMQP_URL, delete_topology, eventually
from tests.delivery.conftest import TOKEN, prospect_xml
from tests.fixtures_tenancy import INTOUCH_KEY
from tests.integration.test_process import environment, free_port
from tests.pgserver import private_postgres
from tests.processes import Role, consumers, one_partner_tenancy, ready, stopping

pytestmark = pytest.mark.timeout(300)

RATE = 20  # records a second
BEFORE, OUTAGE, AFTER = 3.0, 45.0, 2.0
AUTH = {"Authorization": f"Bearer {INTOUCH_KEY}", "Content-Type": "application/xml"}


async def test_database_stopped_45_s_under_load(settings: Settings, tmp_path: Path) -> None:
    fake = FakeGenericJson(TOKEN)
    fake.delay = 0.05
    await fake.start()
    tenancy_file = tmp_path / "tenancy.toml"
    tenancy_file.write_text(one_partner_tenancy(fake.url))
    shape = topology(replace(settings, retry_tiers=(1, 2)), load(tenancy_file, os.environ))
    port = free_port()
    try:
        async with private_postgres() as database:
            await migrate(database.url, settings.namespace)
            env = environment(settings, port) | {
                "HUB_DATABASE_URL": database.url,
                "HUB_TENANCY_FILE": str(tenancy_file),
                "HUB_TEST_PARTNER_TOKEN": TOKEN,
                "HUB_RETRY_TIERS": "1,2",
            }
            hub = Role("hub", ["run"], env, tmp_path)
            async with stopping([hub], tmp_path):
                await hub.start()
                await consumers(AMQP_URL, {shape.inbox.name: 1, shape.deliver("crm").name: 1})
                await ready(port)
                figures = await _post_through_an_outage(port, database, fake)
                accepted = figures["accepted"]

                started = figures["restarted_at"]
                at_restart = figures["delivered_at_restart"]

                async def resumed() -> bool:
                    return len(fake.users) > at_restart

                await eventually(resumed, within=60, interval=0.05)
                resumed_after = time.monotonic() - figures["restarted_at"]

                async def all_there() -> bool:
                    return set(accepted) <= set(fake.users)

                await eventually(all_there, within=120, interval=0.2)
                recovered = time.monotonic() - started
                await asyncio.sleep(1)  # a late duplicate would show below

                creates = {u: fake.creates[u] for u in accepted}
                duplicated = sum(n - 1 for n in creates.values() if n > 1)
                lost = len(set(accepted) - set(fake.users))
                print(
                    f"\ndatabase outage: {len(accepted)} accepted ({figures['during']} while the"
                    f" database was away), lost {lost}, duplicated {duplicated}; readyz 503 while"
                    f" away: {figures['readyz_away']}; deliveries resumed {resumed_after:.1f} s and"
                    f" all were delivered {recovered:.1f} s after the database was back"
                )
                assert figures["refused"] == 0, "saves need only the broker"
                assert figures["readyz_away"], "/readyz said ready while the database was away"
                assert lost == 0
                assert duplicated == 0, {u: n for u, n in creates.items() if n > 1}
                assert await _dead_messages(shape) == {}
                connection = await asyncpg.connect(database.url)
                try:
                    await connection.execute(f"SET search_path TO {settings.namespace}")
                    assert await connection.fetchval("SELECT count(*) FROM dead_letters") == 0
                    spent = await connection.fetchval(
                        "SELECT count(*) FROM delivery_attempts WHERE outcome <> 'delivered'"
                    )
                    assert spent == 0, "an attempt was spent on the database's outage"
                finally:
                    await connection.close()
    finally:
        await fake.stop()
        await delete_topology(AMQP_URL, shape)


async def _post_through_an_outage(port: int, database, fake) -> dict:  # type: ignore[no-untyped-def]
    """Post RATE records a second; stop the database after BEFORE s, for OUTAGE s."""
    url = f"http://127.0.0.1:{port}/connector/api/2011-11/user"
    accepted: dict[str, str] = {}  # hub UUID -> record ID
    refused = 0
    away = asyncio.Event()
    posted_while_away = 0
    readyz_away: list[int] = []
    restart: dict[str, float] = {}

    async with aiohttp.ClientSession() as http:

        async def post(n: int) -> None:
            nonlocal refused, posted_while_away
            async with http.post(url, data=prospect_xml(f"O-{n}"), headers=AUTH) as r:
                text = await r.text()
                if r.status != 200:
                    refused += 1
                    return
                accepted[text.split("<uuid>")[1].split("<")[0]] = f"O-{n}"
                if away.is_set():
                    posted_while_away += 1

        async def load() -> None:
            tasks = []
            total = int(RATE * (BEFORE + OUTAGE + AFTER))
            begin = time.monotonic()
            for n in range(total):
                await asyncio.sleep(max(0.0, begin + n / RATE - time.monotonic()))
                tasks.append(asyncio.create_task(post(n)))
            await asyncio.gather(*tasks)

        async def outage() -> None:
            await asyncio.sleep(BEFORE)
            # Calls in flight when the database goes: the partner takes them, and the hub
            # can write that down only once the database is back.
            fake.delay = 1.0
            await asyncio.sleep(0.5)
            await database.stop()
            away.set()
            fake.delay = 0.0
            try:
                await asyncio.sleep(OUTAGE / 2)
                async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                    readyz_away.append(r.status)
                await asyncio.sleep(OUTAGE / 2)
            finally:
                away.clear()
                await database.start()
                restart["at"] = time.monotonic()
                restart["delivered"] = len(fake.users)

        await asyncio.gather(load(), outage())
    return {
        "accepted": accepted,
        "refused": refused,
        "during": posted_while_away,
        "readyz_away": readyz_away == [503],
        "restarted_at": restart["at"],
        "delivered_at_restart": restart["delivered"],
    }


async def _dead_messages(shape) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Messages in every dead-letter queue and the parked queue, those not empty."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        found = {}
        for queue in shape.queues():
            if queue.name.endswith(".dead") or queue.name == shape.parked.name:
                declared = await channel.declare_queue(queue.name, passive=True)
                if declared.declaration_result.message_count:
                    found[queue.name] = declared.declaration_result.message_count
        return found


async def test_a_hub_started_while_the_database_is_away_waits_for_it(
    settings: Settings, tmp_path: Path
) -> None:
    """Before: `hub run` exited at once (the router's and the ops port's pools connected at
    start). Now it starts, says 503 on /readyz, and delivers once the database is back."""
    fake = FakeGenericJson(TOKEN)
    await fake.start()
    tenancy_file = tmp_path / "tenancy.toml"
    tenancy_file.write_text(one_partner_tenancy(fake.url))
    shape = topology(settings, load(tenancy_file, os.environ))
    port = free_port()
    try:
        async with private_postgres() as database:
            await migrate(database.url, settings.namespace)
            await database.stop()
            env = environment(settings, port) | {
                "HUB_DATABASE_URL": database.url,
                "HUB_TENANCY_FILE": str(tenancy_file),
                "HUB_TEST_PARTNER_TOKEN": TOKEN,
            }
            hub = Role("hub", ["run"], env, tmp_path)
            async with stopping([hub], tmp_path), aiohttp.ClientSession() as http:
                process = await hub.start()
                await consumers(AMQP_URL, {shape.inbox.name: 1, shape.deliver("crm").name: 1})
                url = f"http://127.0.0.1:{port}"
                async with http.get(f"{url}/readyz") as r:
                    assert (r.status, await r.json()) == (503, {"broker": True, "database": False})
                user = f"{url}/connector/api/2011-11/user"
                async with http.post(user, data=prospect_xml("W-1"), headers=AUTH) as r:
                    assert r.status == 200, await r.text()
                    uuid = (await r.text()).split("<uuid>")[1].split("<")[0]
                await asyncio.sleep(2)
                assert process.returncode is None, "the hub gave up on the database"
                await database.start()
                await ready(port)
                await fake.wait_for_users(1, timeout=30)
                assert fake.creates[uuid] == 1
    finally:
        await fake.stop()
        await delete_topology(AMQP_URL, shape)
