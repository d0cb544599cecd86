"""/metrics on the ops port of a running hub: the process's counters (the hub runs in the
test's process, so its deliveries, retries and dead letters are counted here) and the
gauges read from PostgreSQL and RabbitMQ at each scrape. The counters are the
process's, shared by every test: a test reads what changed, or labels of its own
namespace.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub.delivery.breaker import Breaker
from hub.ops import metrics
from hub.ops.service import OpsService
from hub.settings import Address
from tests.conftest import eventually
from tests.delivery.conftest import DeliveryHub, prospect_xml, staff_xml
from tests.ops.conftest import MakeDead

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def scrape(hub: DeliveryHub) -> AsyncIterator[Scrape]:
    assert hub.tenancy is not None
    service = OpsService(replace(hub.settings, ops_addr=Address("127.0.0.1", 0)), hub.tenancy)
    await service.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Scrape(f"http://127.0.0.1:{service.port}/metrics", http)
    finally:
        await service.stop()


class Scrape:
    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self._http = http

    async def __call__(self) -> Samples:
        """Every sample, by name and labels (no token: Prometheus scrapes without one)."""
        async with self._http.get(self.url) as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"] == metrics.CONTENT_TYPE
            text = await answer.text()
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_deliveries_and_dead_letters_are_counted_and_read(
    hub: DeliveryHub, scrape: Scrape, make_dead: MakeDead
) -> None:
    ns = hub.settings.namespace
    before = await scrape()
    await make_dead(["R-1", "R-2"])
    # books delivers them; its attempts are counted once its answers are in.

    async def books_delivered() -> bool:
        return len(hub.fake("books").users) == 2

    await eventually(books_delivered)
    after = await scrape()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("hub_deliveries_total", partner="crm", outcome="permanent") == 2
    assert grew("hub_deliveries_total", partner="books", outcome="delivered") == 2
    assert grew("hub_delivery_attempt_seconds_count", partner="crm") == 2
    assert value(after, "hub_dead_lettered_total", queue=f"{ns}.deliver.crm") == 2
    assert grew("hub_http_requests_total", endpoint="/connector/api/2011-11/user", status="200")
    assert grew("hub_publish_confirm_seconds_count") >= 2
    assert value(after, "hub_dead_letters", partner="crm", reason=_reason(after)) == 2
    assert value(after, "hub_waiting_records", partner="crm") == 0  # dead: not waiting
    assert (("hub_oldest_waiting_seconds", frozenset({("partner", "books")}))) in after
    assert value(after, "hub_queue_consumers", queue=f"{ns}.deliver.crm") >= 1
    assert (("hub_queue_messages", frozenset({("queue", f"{ns}.inbox")}))) in after
    assert value(after, "hub_scrape_up", source="database") == 1
    assert value(after, "hub_scrape_up", source="broker") == 1
    assert value(after, "process_cpu_seconds_total") > 0


def _reason(samples: Samples) -> str:
    """The one reason label of crm's dead letters: the record's UUID is not in it."""
    [reason] = [
        dict(labels)["reason"]
        for name, labels in samples
        if name == "hub_dead_letters" and dict(labels)["partner"] == "crm"
    ]
    assert reason.startswith("crm answered 400: ")
    assert "/users/{uuid}" in reason
    return reason


async def test_retries_in_process_and_through_a_tier_are_counted(
    hub: DeliveryHub, scrape: Scrape
) -> None:
    queue = f"{hub.settings.namespace}.deliver.crm"
    # The first try and the two quick retries fail; the delay tier's attempt succeeds.
    hub.fake("crm").fail_next(3, status=503)
    record = await hub.post("user", prospect_xml("R-1"))

    async def delivered() -> bool:
        return hub.fake("crm").creates[record] == 1

    await eventually(delivered, within=20)
    samples = await scrape()
    assert value(samples, "hub_retries_total", queue=queue, kind="in_process") == 2
    assert value(samples, "hub_retries_total", queue=queue, kind="tier") == 1
    assert value(samples, "hub_dead_lettered_total", queue=queue) == 0


async def test_mapping_gaps_are_read_per_partner_and_kind(hub: DeliveryHub, scrape: Scrape) -> None:
    await hub.post("staff", staff_xml("S-1", "sam@example.com"))
    record = await hub.post("user", prospect_xml("R-1", owner="S-1"))

    async def delivered() -> bool:
        return record in hub.fake("crm").users

    await eventually(delivered)
    samples = await scrape()
    # crm has no staff member with that email: a gap.
    assert value(samples, "hub_mapping_gaps", partner="crm", kind="staff") == 1
    assert value(samples, "hub_mapping_gaps", partner="crm", kind="leadsource") == 0


async def test_a_source_that_does_not_answer_is_left_out(hub: DeliveryHub) -> None:
    assert hub.tenancy is not None
    settings = replace(
        hub.settings,
        ops_addr=Address("127.0.0.1", 0),
        amqp_urls=("amqp://guest:guest@127.0.0.1:1/",),
    )
    service = OpsService(settings, hub.tenancy)
    await service.start()
    try:
        async with aiohttp.ClientSession() as http:
            samples = await Scrape(f"http://127.0.0.1:{service.port}/metrics", http)()
    finally:
        await service.stop()
    assert value(samples, "hub_scrape_up", source="broker") == 0
    assert value(samples, "hub_scrape_up", source="database") == 1
    assert not [name for name, _ in samples if name == "hub_queue_messages"]
    assert ("hub_waiting_records", frozenset({("partner", "crm")})) in samples


async def test_the_circuit_gauge_follows_the_breaker() -> None:
    breaker = Breaker("gauge-partner", threshold=1, cooldown=0.01)

    def state() -> float | None:
        return metrics.REGISTRY.get_sample_value("hub_circuit_state", {"partner": "gauge-partner"})

    await breaker.failed(False, "503")
    assert state() == 2
    await asyncio.sleep(0.02)
    assert await breaker.admit() is True  # the probe
    assert state() == 1
    await breaker.succeeded(True)
    assert state() == 0
