"""The router: the one writer of records.

Consumes the inbox, stores each record (`store.records.apply`) and logs what
it did. Fan-out to partners is the delivery issue's; the router will pick
subscribers here, after the store. It never talks HTTP, and never acks a
message before the record is committed.
"""

from __future__ import annotations

import asyncio

import structlog

from hub.broker.connection import Nodes
from hub.broker.consumer import Consumer
from hub.broker.topology import Topology
from hub.message import decode_batch
from hub.settings import Settings
from hub.store import records
from hub.store.pool import Pool, create_pool

log = structlog.get_logger(__name__)


class Router:
    """Stores what arrives in the inbox."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def handle(self, body: bytes, message_id: str | None) -> None:
        # One transaction per batch; a redelivered batch skips the saves already applied.
        saves = decode_batch(body)
        for inbound, applied in zip(saves, await records.apply(self._pool, saves), strict=True):
            log.info(
                "stored",
                uuid=str(inbound.uuid),
                provider=inbound.provider,
                kind=inbound.kind.value,
                record_id=inbound.record_id,
                outcome=applied.outcome,
                version=applied.version,
            )


class RouterService:
    """The router as a component of `hub run` / `hub router`."""

    name = "router"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pool: Pool | None = None

    async def start(self) -> None:
        settings = self._settings
        self._pool = await create_pool(settings.database_url, settings.namespace)
        topology = Topology(settings.namespace)
        consumer = Consumer(
            Nodes(settings.amqp_urls),
            topology,
            topology.inbox,
            Router(self._pool).handle,
            prefetch=settings.router_prefetch,
            name="hub-router",
        )
        self._task = asyncio.create_task(
            consumer.run(self._stopping, settings.shutdown_grace), name="router"
        )

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
        if self._pool is not None:
            await self._pool.close()
