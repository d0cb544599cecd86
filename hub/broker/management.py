"""What only RabbitMQ's management plugin knows: unacked counts and message rates.

The hub never needs the plugin: depths and consumers come from passive
declares. Where the plugin is enabled, `queue_stats()` adds, per queue, the
messages delivered and not yet acked and the broker's rates (published in,
delivered or fetched out, per second). The management API is found at
`HUB_MANAGEMENT_URL` (one or more base URLs, comma-separated, each ending in
/api; credentials in the URL), else at port 15672 of each AMQP node with the
AMQP credentials (the plugin's default). The first node that answers is used;
when none does, there are no such figures, and no error: the plugin is
optional.

RabbitMQ computes rates from statistics that it samples every 5 s by
default, so they trail the queues by a few seconds.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import aiohttp
import structlog

log = structlog.get_logger(__name__)

_COLUMNS = ",".join(
    (
        "name",
        "messages_unacknowledged",
        "message_stats.publish_details.rate",
        "message_stats.deliver_get_details.rate",
    )
)


@dataclass(frozen=True, slots=True)
class QueueStats:
    unacked: int | None
    in_rate: float | None  # messages published into the queue per second
    out_rate: float | None  # messages delivered to consumers (or fetched) per second


def urls_for(amqp_urls: Iterable[str]) -> tuple[str, ...]:
    """The plugin's default address for each AMQP node: port 15672, same credentials."""
    found = []
    for url in amqp_urls:
        parts = urlsplit(url)
        user = parts.username or "guest"
        password = parts.password or "guest"
        host = parts.hostname or "localhost"
        host = f"[{host}]" if ":" in host else host
        found.append(f"http://{quote(user, safe='')}:{quote(password, safe='')}@{host}:15672/api")
    return tuple(found)


def vhost_of(amqp_url: str) -> str:
    """The virtual host that an AMQP URL names ("/" when its path is empty)."""
    path = urlsplit(amqp_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


async def queue_stats(
    urls: Sequence[str], vhost: str, names: Iterable[str], within: float = 2.0
) -> dict[str, QueueStats] | None:
    """Per queue name, what the plugin says; None when no node's plugin answered."""
    wanted = set(names)
    for url in urls:
        parts = urlsplit(url)
        secret = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        auth = "Basic " + base64.b64encode(secret.encode()).decode()
        base = url.replace(f"{parts.username}:{parts.password}@", "", 1).rstrip("/")
        endpoint = f"{base}/queues/{quote(vhost, safe='')}?columns={_COLUMNS}"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=within)) as http,
                http.get(endpoint, headers={"Authorization": auth}) as answer,
            ):
                if answer.status != 200:
                    log.info("management API refused", url=base, status=answer.status)
                    continue
                listed = await answer.json()
        except (TimeoutError, aiohttp.ClientError, ValueError):
            continue  # not enabled on that node, or the node is away: try the next
        return {q["name"]: _stats(q) for q in listed if q.get("name") in wanted}
    return None


def _stats(queue: dict[str, Any]) -> QueueStats:
    stats = queue.get("message_stats") or {}

    def rate(key: str) -> float:
        return float((stats.get(key) or {}).get("rate", 0.0))

    unacked = queue.get("messages_unacknowledged")
    return QueueStats(
        unacked=int(unacked) if unacked is not None else None,
        in_rate=rate("publish_details"),
        out_rate=rate("deliver_get_details"),
    )
