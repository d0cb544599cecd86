"""What is flowing and what is stuck: queues, partners, dead letters; and `hub check`.

Queue depths and consumers come from passive declares, so no management
plugin is needed; where the plugin answers (hub/broker/management.py), each
queue also gets its unacked count and the broker's in/out rates (None
without it). The partners' figures are the hub's own, from PostgreSQL:
records delivered and failed per partner in the last 5 minutes.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiohttp

from hub.broker import management
from hub.broker.connection import CONNECT_ERRORS
from hub.errors import HubError, Unavailable
from hub.ops.context import Ops
from hub.store import ops as queries
from hub.store.migrate import schema_problem
from hub.store.ops import json_safe
from hub.store.pool import database_errors

WINDOW = datetime.timedelta(minutes=5)


async def queues(ops: Ops) -> list[dict[str, Any]]:
    """Every queue of the topology: messages ready and consumers (None: not declared)."""
    names = [q.name for q in ops.topology.queues()]
    found: list[dict[str, Any]] = []
    connection = await ops.nodes.connect("hub-ops-status")
    try:
        channel = await connection.channel()
        for name in names:
            try:
                queue = await channel.declare_queue(name, passive=True)
            except aio_pika.exceptions.ChannelClosed:
                found.append({"queue": name, "messages": None, "consumers": None})
                channel = await connection.channel()  # a failed passive declare closes it
                continue
            result = queue.declaration_result
            found.append(
                {
                    "queue": name,
                    "messages": result.message_count,
                    "consumers": result.consumer_count,
                }
            )
    finally:
        await connection.close()
    settings = ops.settings
    plugin = await management.queue_stats(
        settings.management_urls or management.urls_for(settings.amqp_urls),
        management.vhost_of(settings.amqp_urls[0]),
        names,
    )
    for row in found:
        stats = (plugin or {}).get(row["queue"])
        row["unacked"] = stats.unacked if stats else None
        row["in_per_s"] = round(stats.in_rate, 1) if stats and stats.in_rate is not None else None
        row["out_per_s"] = (
            round(stats.out_rate, 1) if stats and stats.out_rate is not None else None
        )
    return found


async def partners(ops: Ops) -> list[dict[str, Any]]:
    """Each receiving partner: backlog, oldest wait, the last 5 minutes, circuit, last error."""
    backlog = await queries.backlog(ops.pool, WINDOW)
    now = datetime.datetime.now(datetime.UTC)
    out = []
    for provider in ops.tenancy.receivers():
        seen = backlog.get(provider.name, {})
        oldest = seen.get("oldest")
        out.append(
            json_safe(
                {
                    "partner": provider.name,
                    "waiting": seen.get("waiting", 0),
                    "oldest_wait_s": round((now - oldest).total_seconds(), 1) if oldest else None,
                    "delivered_5m": seen.get("delivered", 0),
                    "failed_5m": seen.get("failed", 0),
                    "circuit": seen.get("circuit", "closed"),
                    "circuit_since": seen.get("circuit_since"),
                    "last_error": seen.get("last_error"),
                    "last_error_at": seen.get("last_error_at"),
                }
            )
        )
    return out


async def dead(ops: Ops) -> list[dict[str, Any]]:
    return [json_safe(dict(row)) for row in await queries.dead_summary(ops.pool)]


@dataclass(frozen=True, slots=True)
class Status:
    queues: list[dict[str, Any]]
    partners: list[dict[str, Any]]
    dead: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"queues": self.queues, "partners": self.partners, "dead_letters": self.dead}

    @property
    def stuck(self) -> bool:
        """Something needs an operator: dead letters, an open circuit, a missing queue."""
        return (
            bool(self.dead)
            or any(p["circuit"] != "closed" for p in self.partners)
            or any(q["messages"] is None for q in self.queues)
        )


async def status(ops: Ops) -> Status:
    return Status(await queues(ops), await partners(ops), await dead(ops))


async def check(ops: Ops, ingress: bool = False) -> list[tuple[str, bool, str]]:
    """(what, ok, detail) for the database, the schema, the broker and its queues, and with
    `ingress` the ingress's /readyz: what a container probe asks."""
    results: list[tuple[str, bool, str]] = []
    try:
        async with database_errors(), ops.pool.acquire() as connection:
            problem = await schema_problem(connection, ops.settings.namespace)
        results.append(("database", True, "answers"))
        results.append(("schema", problem is None, problem or "up to date"))
    except HubError as exc:
        results.append(("database", False, str(exc)))
    try:
        found = await queues(ops)
        missing = [q["queue"] for q in found if q["messages"] is None]
        results.append(("broker", True, "answers"))
        results.append(
            ("queues", not missing, "all declared" if not missing else f"missing: {missing}")
        )
    except (Unavailable, *CONNECT_ERRORS) as exc:
        results.append(("broker", False, str(exc)))
    if ingress:
        results.append(await _ready(ops))
    return results


async def _ready(ops: Ops) -> tuple[str, bool, str]:
    address = ops.settings.ingress_addr
    host = "127.0.0.1" if address.host in ("", "0.0.0.0", "::") else address.host
    url = f"http://{host}:{address.port}/readyz"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http,
            http.get(url) as answer,
        ):
            return ("ingress", answer.status == 200, f"{url} answered {answer.status}")
    except (TimeoutError, aiohttp.ClientError) as exc:
        return ("ingress", False, f"{url}: {exc!r}")
