"""Each role run on its own serves its counters on HUB_METRICS_ADDR.

`hub ingress --processes 2` (children on P and P + 1), `hub router` and `hub
deliver` as processes; a few records posted; each process's /metrics parses
and counts what that process did.
"""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from adapters.fakes.generic_json import FakeGenericJson
from hub.settings import Settings
from hub.tenancy import load
from hub.wiring import topology
from tests.conftest import AMQP_URL, delete_topology, eventually
from tests.delivery.conftest import TOKEN, prospect_xml
from tests.fixtures_tenancy import INTOUCH_KEY
from tests.integration.test_process import environment, free_port
from tests.processes import Role, consumers, one_partner_tenancy, ready, stopping

AUTH = {"Authorization": f"Bearer {INTOUCH_KEY}", "Content-Type": "application/xml"}
RECORDS = 6


def free_pair() -> int:
    """A port P with P + 1 free too."""
    while True:
        port = free_port()
        if port < 65535 and free_port_is(port + 1):
            return port


def free_port_is(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
SAVES = "/connector/api/2011-11/user"


async def scrape(http: aiohttp.ClientSession, port: int) -> Samples:
    async with http.get(f"http://127.0.0.1:{port}/metrics") as answer:
        assert answer.status == 200
        text = await answer.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def all_answer(ports: list[int]) -> bool:
    async with aiohttp.ClientSession() as http:
        for port in ports:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
                    if answer.status != 200:
                        return False
            except aiohttp.ClientError:
                return False
    return True


def total(found: Samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and want <= set(ls))


async def test_each_role_process_serves_its_own_counters(
    settings: Settings, tmp_path: Path
) -> None:
    fake = FakeGenericJson(TOKEN)
    await fake.start()
    tenancy_file = tmp_path / "tenancy.toml"
    tenancy_file.write_text(one_partner_tenancy(fake.url))
    settings = replace(settings, tenancy_file=tenancy_file)
    shape = topology(settings, load(tenancy_file, os.environ))
    port = free_port()
    env = environment(settings, port) | {
        "HUB_TENANCY_FILE": str(tenancy_file),
        "HUB_TEST_PARTNER_TOKEN": TOKEN,
    }
    ingress_metrics, router_metrics, deliver_metrics = free_pair(), free_port(), free_port()

    def on(port: int) -> dict[str, str]:
        return env | {"HUB_METRICS_ADDR": f"127.0.0.1:{port}"}

    roles = [
        Role("ingress", ["ingress", "--processes", "2"], on(ingress_metrics), tmp_path),
        Role("router", ["router"], on(router_metrics), tmp_path),
        Role("deliver", ["deliver"], on(deliver_metrics), tmp_path),
    ]
    try:
        async with stopping(roles, tmp_path):
            for role in roles:
                await role.start()
            await consumers(AMQP_URL, {shape.inbox.name: 1, shape.deliver("crm").name: 1})
            await ready(port)
            # /readyz answers from whichever ingress child is up: wait for every port.
            ports = [ingress_metrics, ingress_metrics + 1, router_metrics, deliver_metrics]
            await eventually(lambda: all_answer(ports), within=30)
            async with aiohttp.ClientSession() as http:
                for n in range(RECORDS):
                    url = f"http://127.0.0.1:{port}{SAVES}"
                    async with http.post(url, data=prospect_xml(f"M-{n}"), headers=AUTH) as r:
                        assert r.status == 200, await r.text()
                await fake.wait_for_users(RECORDS, timeout=30)

                async def delivered() -> dict | None:  # type: ignore[type-arg]
                    found = await scrape(http, deliver_metrics)
                    counted = total(
                        found, "hub_deliveries_total", partner="crm", outcome="delivered"
                    )
                    return found if counted == RECORDS else None

                await eventually(delivered, within=10)
                # Each ingress child counts its own requests; together, every save.
                children = [await scrape(http, ingress_metrics + i) for i in range(2)]
                saves = [
                    total(
                        c,
                        "hub_http_requests_total",
                        endpoint="/connector/api/2011-11/user",
                        status="200",
                    )
                    for c in children
                ]
                assert sum(saves) == RECORDS, saves
                assert all(total(c, "hub_deliveries_total") == 0 for c in children)
                router = await scrape(http, router_metrics)
                assert total(router, "hub_publish_confirm_seconds_count") >= 1
                assert total(router, "hub_deliveries_total") == 0
                async with http.get(f"http://127.0.0.1:{router_metrics}/healthz") as r:
                    assert r.status == 200
    finally:
        await fake.stop()
        await delete_topology(AMQP_URL, shape)
