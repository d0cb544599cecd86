"""Prometheus metrics: what this process did, counted where it happens, and what the
store and the broker hold, read when `/metrics` is scraped.

The process's counters live in `REGISTRY`, made once at import, as Prometheus
clients do: they only go up, so a test reads differences and never resets
them. The hot paths (ingress, publisher, delivery, consumer, breaker) call
the small functions here, which keep the labelled child of each label set:
a count is a dict lookup and an add. The scraped gauges are read anew for
each scrape, each source within `SCRAPE_TIMEOUT`; a source that does not
answer is left out and `hub_scrape_up{source}` says so, so that a scrape
always answers. Counting must never raise, block or do I/O.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from hub.broker.connection import CONNECT_ERRORS
from hub.errors import HubError

if TYPE_CHECKING:
    from hub.ops.context import Ops

log = structlog.get_logger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
SCRAPE_TIMEOUT = 5.0  # seconds per source: Prometheus's own scrape timeout is 10 s
REASON_LENGTH = 200  # a dead letter's reason as a label: long enough to tell reasons apart
# What names a record, not a kind of failure: out of the reason label, or each dead
# letter would be a series of its own.
_RECORD_PARTS = (
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "{uuid}"),
    (re.compile(r"\d{5,}"), "{n}"),
)

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

HTTP_REQUESTS = Counter(
    "hub_http_requests_total",
    "Ingress requests answered, by route (its canonical path) and status.",
    ["endpoint", "status"],
    registry=REGISTRY,
)
PUBLISH_CONFIRM = Histogram(
    "hub_publish_confirm_seconds",
    "From a publish to RabbitMQ's confirm (a save's durability wait).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
REPUBLISHED = Counter(
    "hub_republished_total",
    "Publishes tried again on a fresh channel after a nack or a lost channel or node.",
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "hub_deliveries_total",
    "Deliveries to partners: delivered, transient, permanent, or skipped (it had them).",
    ["partner", "outcome"],
    registry=REGISTRY,
)
DELIVERY_ATTEMPT = Histogram(
    "hub_delivery_attempt_seconds",
    "One delivery attempt: mappings and the partner's answer.",
    ["partner"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
RETRIES = Counter(
    "hub_retries_total",
    "Retries of a failed message: in_process (quick retries) or tier (a delay queue).",
    ["queue", "kind"],
    registry=REGISTRY,
)
DEAD_LETTERED = Counter(
    "hub_dead_lettered_total",
    "Messages sent to the dead letters, by the queue they failed in.",
    ["queue"],
    registry=REGISTRY,
)
CIRCUIT = Gauge(
    "hub_circuit_state",
    "A partner's circuit in this process: 0 closed, 1 half-open, 2 open.",
    ["partner"],
    registry=REGISTRY,
)
CIRCUIT_VALUES = {"closed": 0, "half-open": 1, "open": 2}
INGRESS_WAITING = Gauge(
    "hub_ingress_waiting_saves",
    "Saves waiting in this ingress process for a publish (at most HUB_INGRESS_MAX_WAITING).",
    registry=REGISTRY,
)


# Counting, from the hot paths.


def http_request(endpoint: str, status: int) -> None:
    _http_request(endpoint, status).inc()


def published(seconds: float) -> None:
    PUBLISH_CONFIRM.observe(seconds)


def republished(tries: int) -> None:
    REPUBLISHED.inc(tries)


def delivery(partner: str, outcome: str, seconds: float | None = None) -> None:
    _delivery(partner, outcome).inc()
    if seconds is not None:
        _attempt_latency(partner).observe(seconds)


def retried(queue: str, kind: str) -> None:
    _retry(queue, kind).inc()


def dead_lettered(queue: str) -> None:
    _dead_lettered(queue).inc()


def circuit(partner: str, state: str) -> None:
    _circuit(partner).set(CIRCUIT_VALUES[state])


def ingress_waiting(read: Callable[[], int]) -> None:
    """The ingress's waiting saves, read at each scrape: nothing on the save path."""
    INGRESS_WAITING.set_function(read)


@functools.cache
def _http_request(endpoint: str, status: int) -> Counter:
    return HTTP_REQUESTS.labels(endpoint, str(status))


@functools.cache
def _delivery(partner: str, outcome: str) -> Counter:
    return DELIVERIES.labels(partner, outcome)


@functools.cache
def _attempt_latency(partner: str) -> Histogram:
    return DELIVERY_ATTEMPT.labels(partner)


@functools.cache
def _retry(queue: str, kind: str) -> Counter:
    return RETRIES.labels(queue, kind)


@functools.cache
def _dead_lettered(queue: str) -> Counter:
    return DEAD_LETTERED.labels(queue)


@functools.cache
def _circuit(partner: str) -> Gauge:
    return CIRCUIT.labels(partner)


# The scrape.


class _Scrape:
    """The process's metrics and, after them, what was read for this scrape."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        yield from REGISTRY.collect()
        yield from self._families


def render_process() -> bytes:
    """This process's own metrics only (a role's metrics port: no store or broker reads)."""
    return generate_latest(REGISTRY)


async def render(ops: Ops) -> bytes:
    """The text exposition: process metrics, then the gauges read from the store and broker."""
    database, broker = await asyncio.gather(
        _read("database", _from_database(ops)), _read("broker", _from_broker(ops))
    )
    up = GaugeMetricFamily(
        "hub_scrape_up", "Whether a source answered this scrape (1) or not (0).", labels=["source"]
    )
    up.add_metric(["database"], 0 if database is None else 1)
    up.add_metric(["broker"], 0 if broker is None else 1)
    return generate_latest(_Scrape([*(database or []), *(broker or []), up]))


async def _read(source: str, reading: Awaitable[list[Metric]]) -> list[Metric] | None:
    """One source's gauges, or None if it did not answer in time."""
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT):
            return await reading
    except (TimeoutError, HubError, *CONNECT_ERRORS) as exc:
        log.warning("metrics source unavailable", source=source, error=str(exc) or repr(exc))
        return None


async def _from_database(ops: Ops) -> list[Metric]:
    # Imported here: the hot paths import this module, and hub.ops.status imports them.
    from hub.ops import gaps, status

    partners = await status.partners(ops)
    waiting = _gauge("hub_waiting_records", "Records routed to a partner, not yet delivered.")
    oldest = _gauge(
        "hub_oldest_waiting_seconds", "How long a partner's oldest waiting record has waited."
    )
    for partner in partners:
        waiting.add_metric([partner["partner"]], partner["waiting"])
        oldest.add_metric([partner["partner"]], partner["oldest_wait_s"] or 0.0)
    dead_counts: collections.Counter[tuple[str, str]] = collections.Counter()
    for row in await status.dead(ops):
        dead_counts[(row["partner"], _reason(row["reason"]))] += row["count"]
    dead = _gauge(
        "hub_dead_letters", "Dead letters waiting for an operator.", ["partner", "reason"]
    )
    _fill(dead, dead_counts)
    gap_counts = collections.Counter((g["partner"], g["kind"]) for g in await gaps.listing(ops))
    mapping_gaps = _gauge(
        "hub_mapping_gaps", "Unmatched owners and lead sources.", ["partner", "kind"]
    )
    _fill(mapping_gaps, gap_counts)
    return [waiting, oldest, dead, mapping_gaps]


async def _from_broker(ops: Ops) -> list[Metric]:
    from hub.ops import status  # here, as above

    messages = _gauge("hub_queue_messages", "Messages ready in a queue.", ["queue"])
    consumers = _gauge("hub_queue_consumers", "Consumers of a queue.", ["queue"])
    for queue in await status.queues(ops):
        if queue["messages"] is not None:  # not declared (yet): nothing to say
            messages.add_metric([queue["queue"]], queue["messages"])
            consumers.add_metric([queue["queue"]], queue["consumers"])
    return [messages, consumers]


def _reason(reason: str) -> str:
    for pattern, replacement in _RECORD_PARTS:
        reason = pattern.sub(replacement, reason)
    return reason[:REASON_LENGTH]


def _gauge(name: str, documentation: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels or ["partner"])


def _fill(family: GaugeMetricFamily, counts: collections.Counter[Any]) -> None:
    for labels, count in sorted(counts.items()):
        family.add_metric(list(labels), count)
