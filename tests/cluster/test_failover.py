"""Failover under load: two processes of each role on the three-node cluster.

The hub runs as real processes: `hub ingress --processes 2` (two ingress
processes on one port), two `hub router` and two `hub deliver`, each given
the three nodes in HUB_AMQP_URL. A client posts records at a steady rate,
trying again after a 503 or a refused connection as a partner would. While
it posts:

1. the node that leads the inbox queue is killed (kill -9), the new leader
   is awaited, and the node is started again;
2. the node that a delivery worker is connected to is killed and restarted;
3. one router and one delivery process are killed (kill -9) and restarted.

Then every record answered 200 must reach the fake partner, created there
once. The fake counts every create call (a PUT without X-Partner-Id): a
create sent again as another delivery is a duplicate (must be 0); the same
delivery sent again is a create the killed delivery process had in flight
(at most its concurrency). The figures are printed: lost (must be 0),
duplicates, repeats, 503s, the longest wait for a 200, the leader election
time.

HUB_FAILOVER_RECORDS (default 5000) and HUB_FAILOVER_RATE (records/s,
default 100) size the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from adapters.fakes.generic_json import FakeGenericJson
from hub.settings import Settings
from hub.tenancy import load
from hub.wiring import topology
from tests.cluster.conftest import CLUSTER_WORKER, Cluster
from tests.conftest import delete_topology, eventually
from tests.delivery.conftest import TOKEN, prospect_xml
from tests.fixtures_tenancy import INTOUCH_KEY
from tests.integration.test_process import environment, free_port
from tests.processes import Role, consumers, one_partner_tenancy, ready, stopping

pytestmark = [pytest.mark.cluster, CLUSTER_WORKER, pytest.mark.failover, pytest.mark.timeout(600)]

RECORDS = int(os.environ.get("HUB_FAILOVER_RECORDS", "5000"))
RATE = float(os.environ.get("HUB_FAILOVER_RATE", "100"))
AUTH = {"Authorization": f"Bearer {INTOUCH_KEY}", "Content-Type": "application/xml"}


@dataclass
class Load:
    """What the client posted, and what it was answered."""

    answered: dict[str, str] = field(default_factory=dict)  # record ID -> hub UUID (200)
    refused: int = 0  # 503s and refused connections, each tried again
    longest_wait: float = 0.0  # from a record's first post to its 200
    given_up: list[str] = field(default_factory=list)


async def post_all(url: str, load: Load, records: int, rate: float) -> None:
    """Post `records` prospects at `rate` per second, each until a 200 (or 60 s)."""
    start = time.monotonic()
    ids = iter(range(records))

    async def client(http: aiohttp.ClientSession) -> None:
        for n in ids:
            # Paced: record n goes out no earlier than n / rate seconds after the start.
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            record_id = f"F-{n}"
            first = time.monotonic()
            while True:
                try:
                    async with http.post(url, data=prospect_xml(record_id), headers=AUTH) as r:
                        text = await r.text()
                        if r.status == 200:
                            load.answered[record_id] = text.split("<uuid>")[1].split("<")[0]
                            load.longest_wait = max(load.longest_wait, time.monotonic() - first)
                            break
                        assert r.status == 503, f"{r.status}: {text}"
                except aiohttp.ClientConnectionError:
                    pass
                load.refused += 1
                if time.monotonic() - first > 60:
                    load.given_up.append(record_id)
                    break
                await asyncio.sleep(0.2)

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await asyncio.gather(*(client(http) for _ in range(32)))


async def until(probe: Callable[[], bool]) -> None:
    await eventually(lambda: asyncio.sleep(0, probe()), within=600, interval=0.05)


@pytest.fixture
async def fake() -> AsyncIterator[FakeGenericJson]:
    partner = FakeGenericJson(TOKEN)
    await partner.start()
    try:
        yield partner
    finally:
        await partner.stop()


async def test_killing_nodes_and_processes_under_load_loses_nothing(
    cluster: Cluster, settings: Settings, fake: FakeGenericJson, tmp_path: Path
) -> None:
    tenancy_file = tmp_path / "tenancy.toml"
    tenancy_file.write_text(one_partner_tenancy(fake.url))
    settings = replace(
        settings, tenancy_file=tenancy_file, amqp_urls=cluster.urls, retry_tiers=(1, 2)
    )
    shape = topology(settings, load(tenancy_file, os.environ))
    port = free_port()
    env = environment(settings, port) | {
        "HUB_AMQP_URL": ",".join(cluster.urls),
        "HUB_TENANCY_FILE": str(tenancy_file),
        "HUB_TEST_PARTNER_TOKEN": TOKEN,
        "HUB_RETRY_TIERS": "1,2",
        "HUB_PUBLISH_TIMEOUT": "10",
    }
    roles = [
        Role("ingress", ["ingress", "--processes", "2"], env, tmp_path),
        Role("router", ["router"], env, tmp_path),
        Role("deliver", ["deliver"], env, tmp_path),
    ]
    ingress, router, deliver = roles
    inbox, outbox = shape.inbox.name, shape.deliver("crm").name
    try:
        async with stopping(roles, tmp_path):
            await ingress.start()
            for role in (router, deliver):
                await role.start()
                await role.start()
            await consumers(cluster.urls[0], {inbox: 2, outbox: 2})
            await ready(port)

            posted = Load()
            url = f"http://127.0.0.1:{port}/connector/api/2011-11/user"
            posting = asyncio.create_task(post_all(url, posted, RECORDS, RATE))
            answered = lambda: len(posted.answered)  # noqa: E731
            events: list[str] = []
            began = time.monotonic()

            def event(what: str) -> None:
                at = time.monotonic() - began
                events.append(f"{at:6.1f} s  {answered():5d} answered  {what}")

            # 1. The node that leads the inbox queue.
            await until(lambda: answered() >= RECORDS * 0.15)
            leader = await cluster.leader(inbox, via=0)
            assert leader is not None
            dead = cluster.index(leader)
            killed_at = time.monotonic()
            on_it = await connections_on(cluster, leader, via=(dead + 1) % 3)
            await cluster.kill(dead)
            event(f"killed {leader}, the inbox's leader, with connections {on_it}")
            new_leader = await new_leader_of(cluster, inbox, old=leader)
            election = time.monotonic() - killed_at
            event(f"{new_leader} leads the inbox")
            await cluster.restart()
            event(f"{leader} back in the cluster")

            # 2. The node that a delivery worker is connected to.
            await until(lambda: answered() >= RECORDS * 0.4)
            node = await connected_node(cluster, "hub-deliver-crm", via=cluster.index(new_leader))
            on_it = await connections_on(cluster, node, via=(cluster.index(node) + 1) % 3)
            await cluster.kill(cluster.index(node))
            event(f"killed {node}, a delivery worker's node, with connections {on_it}")
            await cluster.restart()
            event(f"{node} back in the cluster")

            # 3. One router and one delivery process.
            await until(lambda: answered() >= RECORDS * 0.65)
            for role in (router, deliver):
                await role.kill_one()
                event(f"killed a {role.name} process")
                await role.start()

            await posting
            event("all posted")
            expected = set(posted.answered.values())
            with contextlib.suppress(TimeoutError):
                await fake.wait_for_users(len(expected), timeout=180)
            lost = expected - set(fake.users)
            duplicates, repeats = second_creates(fake)
            print("\n" + "\n".join(events))
            print(
                f"failover: {RECORDS} records at {RATE:g}/s; answered 200: {len(expected)}; "
                f"lost {len(lost)}; duplicate creates at the partner {duplicates}; "
                f"creates repeated after the kill {repeats}; "
                f"503s/refused (tried again) {posted.refused}; given up {len(posted.given_up)}; "
                f"longest wait for a 200 {posted.longest_wait:.2f} s; "
                f"inbox leader {leader} -> {new_leader} in {election:.2f} s (management API)"
            )
            assert not posted.given_up, f"never answered 200 within 60 s: {posted.given_up[:10]}"
            assert len(expected) == RECORDS
            assert not lost, f"{len(lost)} answered 200, never delivered: {sorted(lost)[:10]}"
            assert duplicates == 0, fake.creates.most_common(5)
            in_flight = load(tenancy_file, os.environ).providers["crm"].concurrency
            assert repeats <= in_flight, fake.creates.most_common(5)
            await stored_once(settings, expected)
    finally:
        await cluster.restart()  # whatever the test left down
        await delete_topology(cluster.urls[0], shape)


def second_creates(fake: FakeGenericJson) -> tuple[int, int]:
    """(duplicates, repeats): create calls of a record beyond its first, as another
    delivery (another Idempotency-Key: the hub sent it as new again), and as the same
    one (a create in flight in the killed delivery process, never heard answered, sent
    again by the next: at least once delivery, one user at the idempotent partner)."""
    keys: dict[str, set[str]] = {}
    for request in fake.requests:
        if request.create is not None:
            keys.setdefault(request.create, set()).add(request.headers["Idempotency-Key"])
    duplicates = sum(len(k) - 1 for k in keys.values())
    return duplicates, sum(n - 1 for n in fake.creates.values()) - duplicates


async def new_leader_of(cluster: Cluster, queue: str, *, old: str) -> str:
    """The queue's next leader, once one of the live nodes names it."""
    dead = cluster.index(old)
    via = (dead + 1) % 3
    while True:
        try:
            leader = await cluster.leader(queue, via=via)
        except aiohttp.ClientError:
            leader = None
        if leader not in (None, old):
            return str(leader)
        await asyncio.sleep(0.02)


async def connected_node(cluster: Cluster, name: str, *, via: int) -> str:
    """The node that a connection called `name` is on (the management API's view)."""

    async def find() -> str | None:
        for connection in await cluster.api("/connections", via=via):
            if connection.get("client_properties", {}).get("connection_name") == name:
                return str(connection["node"])
        return None

    return str(await eventually(find, within=30))


async def connections_on(cluster: Cluster, node: str, *, via: int) -> list[str]:
    """The names of the hub's connections on `node`."""
    return sorted(
        str(c.get("client_properties", {}).get("connection_name"))
        for c in await cluster.api("/connections", via=via)
        if c["node"] == node
    )


async def stored_once(settings: Settings, uuids: set[str]) -> None:
    """One record per posted ID at version 1, delivered once, no dead letters."""
    connection = await asyncpg.connect(settings.database_url)
    try:
        await connection.execute(f"SET search_path TO {settings.namespace}")
        records = await connection.fetch("SELECT uuid::text AS uuid, version FROM records")
        assert {r["uuid"] for r in records} == uuids
        assert {r["version"] for r in records} == {1}
        delivered = await connection.fetchval(
            "SELECT count(*) FROM deliveries WHERE partner = 'crm' AND delivered_version = 1"
            " AND partner_id IS NOT NULL"
        )
        assert delivered == len(uuids)
        assert await connection.fetchval("SELECT count(*) FROM dead_letters") == 0
    finally:
        await connection.close()
