"""Two processes of each role keep every guarantee of one.

`hub ingress --processes 2` (two processes on one port), two `hub router` and
two `hub deliver` run as real processes against the machine's RabbitMQ and
PostgreSQL. Each record is saved three times with a changed name (each save
after the previous one was answered, as a partner's own updates come), the
records at once; the partner refuses the first few deliveries for good. Then:
one hub UUID per record, versions that count the saves applied (a save that
the other router applied after a newer one is stale, and ignored), the
newest save stored and delivered, the partner never sent an older version
after a newer one, one create per person there, and exactly one dead-letter
row per refused delivery.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from adapters.fakes.generic_json import FakeGenericJson
from hub.settings import Settings
from hub.tenancy import load
from hub.wiring import topology
from tests.conftest import AMQP_URL, delete_topology, eventually
from tests.delivery.conftest import TOKEN, prospect_xml
from tests.fixtures_tenancy import INTOUCH_KEY
from tests.integration.test_process import environment, free_port
from tests.processes import Role, consumers, one_partner_tenancy, ready, stopping

pytestmark = pytest.mark.timeout(300)

RECORDS = 150
NAMES = ("First", "Second", "Third")  # the name of each record's version 1, 2, 3
REFUSED = 5
AUTH = {"Authorization": f"Bearer {INTOUCH_KEY}", "Content-Type": "application/xml"}


async def test_two_processes_of_each_role_keep_the_guarantees(
    settings: Settings, tmp_path: Path
) -> None:
    fake = FakeGenericJson(TOKEN)
    await fake.start()
    tenancy_file = tmp_path / "tenancy.toml"
    tenancy_file.write_text(one_partner_tenancy(fake.url))
    settings = replace(settings, tenancy_file=tenancy_file, retry_tiers=(1, 2))
    shape = topology(settings, load(tenancy_file, os.environ))
    port = free_port()
    env = environment(settings, port) | {
        "HUB_TENANCY_FILE": str(tenancy_file),
        "HUB_TEST_PARTNER_TOKEN": TOKEN,
        "HUB_RETRY_TIERS": "1,2",
    }
    roles = [
        Role("ingress", ["ingress", "--processes", "2"], env, tmp_path),
        Role("router", ["router"], env, tmp_path),
        Role("deliver", ["deliver"], env, tmp_path),
    ]
    try:
        async with stopping(roles, tmp_path):
            for role in roles:
                await role.start()
                if role.name != "ingress":
                    await role.start()
            await consumers(AMQP_URL, {shape.inbox.name: 2, shape.deliver("crm").name: 2})
            await ready(port)
            fake.fail_next(REFUSED, status=400, body='{"error": "refused for the test"}')

            url = f"http://127.0.0.1:{port}/connector/api/2011-11/user"
            answered: dict[str, set[str]] = defaultdict(set)  # record ID -> hub UUIDs answered
            async with aiohttp.ClientSession() as http:

                async def save_three_times(n: int) -> None:
                    for name in NAMES:
                        body = prospect_xml(f"T-{n}", firstname=name)
                        async with http.post(url, data=body, headers=AUTH) as r:
                            text = await r.text()
                            assert r.status == 200, text
                            answered[f"T-{n}"].add(text.split("<uuid>")[1].split("<")[0])

                await asyncio.gather(*(save_three_times(n) for n in range(RECORDS)))

            assert all(len(uuids) == 1 for uuids in answered.values()), "one hub UUID per record"
            uuids = {u for us in answered.values() for u in us}

            async def all_latest() -> bool:
                latest = [fake.users.get(u, {}).get("firstName") for u in uuids]
                return latest.count(NAMES[-1]) == RECORDS

            await eventually(all_latest, within=120)
            await asyncio.sleep(1)  # anything still to come would break the checks below

            # The partner: one create per person; per person, versions never go back.
            assert set(fake.creates) == uuids
            assert set(fake.creates.values()) == {1}
            seen: dict[str, list[int]] = defaultdict(list)
            refused = 0
            for request in fake.requests:
                if request.status == 400:
                    refused += 1
                elif request.method in ("POST", "PUT") and request.status < 300:
                    seen[request.path].append(NAMES.index(request.json["firstName"]))
            assert refused == REFUSED
            assert all(versions == sorted(versions) for versions in seen.values()), seen

            connection = await asyncpg.connect(settings.database_url)
            try:
                await connection.execute(f"SET search_path TO {settings.namespace}")
                # A save that a second router applied after a newer one is "stale": it does not
                # count. So each version is the number of saves applied, the last one's included.
                rows = await connection.fetch(
                    """SELECT r.uuid::text AS uuid, r.version,
                              count(*) AS saves,
                              count(*) FILTER (WHERE c.outcome IN ('created', 'changed'))
                                AS applied,
                              max(c.version) AS highest
                         FROM records r JOIN receipts c USING (uuid)
                        WHERE r.kind = 'user' GROUP BY r.uuid, r.version"""
                )
                assert {r["uuid"] for r in rows} == uuids
                assert {r["saves"] for r in rows} == {len(NAMES)}
                assert all(r["version"] == r["applied"] == r["highest"] for r in rows), rows
                delivered = await connection.fetch(
                    "SELECT d.delivered_version = r.version AS latest FROM deliveries d"
                    " JOIN records r USING (uuid) WHERE d.partner = 'crm'"
                )
                assert [r["latest"] for r in delivered] == [True] * RECORDS

                async def kept() -> bool:
                    return bool(await connection.fetchval("SELECT count(*) FROM dead_letters") >= 5)

                await eventually(kept, within=30)
                await asyncio.sleep(1)
                assert await connection.fetchval("SELECT count(*) FROM dead_letters") == REFUSED
            finally:
                await connection.close()
    finally:
        await fake.stop()
        await delete_topology(AMQP_URL, shape)
