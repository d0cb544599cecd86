"""The router: the one writer of records, and the fan-out to partners.

Consumes the inbox, stores each batch (`store.records.apply`), then publishes
a delivery job to each partner subscribed for a record whose content changed
(`delivery.fanout`), one message per partner for the batch, confirmed,
before it acks. It never talks HTTP, and
never acks a message before its records are committed and its jobs confirmed.
"""

from __future__ import annotations

import asyncio
import uuid

import structlog

from hub.broker.connection import Nodes
from hub.broker.consumer import Consumer, Incoming, RetryBudget
from hub.broker.publisher import Publisher
from hub.broker.topology import Topology
from hub.delivery import fanout, job
from hub.delivery.job import DeliveryJob
from hub.errors import BrokerRefused, Unavailable
from hub.message import Inbound, decode_batch
from hub.settings import Settings
from hub.store import deliveries, records
from hub.store.health import DatabaseGate
from hub.store.migrate import check_schema
from hub.store.pool import Pool, create_pool
from hub.tenancy import Tenancy
from hub.wiring import topology

log = structlog.get_logger(__name__)


class Router:
    """Stores what arrives in the inbox and sends it on to subscribers."""

    max_jobs = 100  # per message

    def __init__(
        self, pool: Pool, tenancy: Tenancy, topology: Topology, publisher: Publisher
    ) -> None:
        self._pool = pool
        self._tenancy = tenancy
        self._topology = topology
        self._publisher = publisher
        self._receivers = frozenset(p.name for p in tenancy.receivers())

    async def handle(self, incoming: Incoming) -> None:
        # One transaction per batch; a redelivered batch skips the saves already applied.
        saves = decode_batch(incoming.body)
        # By partner, then record: a record saved twice in the batch is one job, its latest.
        jobs: dict[str, dict[uuid.UUID, DeliveryJob]] = {}
        applied_all = await records.apply(self._pool, saves, self._receivers)
        for save, applied in zip(saves, applied_all, strict=True):
            log.info(
                "stored",
                uuid=str(applied.uuid),
                provider=save.provider,
                kind=save.kind.value,
                record_id=save.record_id,
                outcome=applied.outcome,
                version=applied.version,
            )
            if applied.changed or applied.outcome == "redelivered":
                # Redelivered: its jobs may not have been confirmed before a crash. A job
                # twice is harmless, the worker skips a version already delivered.
                for target in self._targets(save):
                    jobs.setdefault(target, {})[applied.uuid] = DeliveryJob(
                        applied.uuid, target, applied.version
                    )
        # What each partner waits for, before it is sent: operators see the backlog.
        await deliveries.routed(
            self._pool,
            [(j.partner, j.uuid, j.version) for js in jobs.values() for j in js.values()],
        )
        await asyncio.gather(
            *(
                self._send(partner_jobs[i : i + self.max_jobs])
                for partner_jobs in (list(by_record.values()) for by_record in jobs.values())
                for i in range(0, len(partner_jobs), self.max_jobs)
            )
        )

    def _targets(self, save: Inbound) -> list[str]:
        targets = fanout.targets(self._tenancy, save.client, save.kind, save.provider, save.body)
        return [t.partner for t in targets]

    async def _send(self, jobs: list[DeliveryJob]) -> None:
        try:
            await self._publisher.publish(
                self._topology.deliver_exchange.name,
                jobs[0].partner,
                job.encode(jobs),
                message_id=job.message_id(jobs),
            )
        except Unavailable as exc:
            # The records are stored; their jobs wait for the partner's queue (full, or the
            # broker away): the inbox message is held and sent again, never dead-lettered.
            raise BrokerRefused(f"jobs for {jobs[0].partner} not taken: {exc}") from exc


class RouterService:
    """The router as a component of `hub run` / `hub router`."""

    name = "router"

    def __init__(
        self, settings: Settings, tenancy: Tenancy, retry: RetryBudget | None = None
    ) -> None:
        self._settings = settings
        self._tenancy = tenancy
        self._retry = retry  # how a transient failure is retried (default: RetryBudget())
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pool: Pool | None = None
        self._gate: DatabaseGate | None = None
        self._publisher: Publisher | None = None

    @property
    def pool(self) -> Pool | None:
        return self._pool

    @property
    def gate(self) -> DatabaseGate | None:
        """Open while the database answers (closed: the router holds its messages)."""
        return self._gate

    async def start(self) -> None:
        settings = self._settings
        # min_size=0: a database away at start is waited out like one that goes later.
        self._pool = await create_pool(settings.database_url, settings.namespace, min_size=0)
        self._gate = DatabaseGate(self._pool, settings.namespace)
        await check_schema(self._pool, settings.namespace, self._gate)
        nodes = Nodes(settings.amqp_urls)
        shape = topology(settings, self._tenancy)
        self._publisher = Publisher(nodes, shape, settings.publish_timeout, "hub-router-fanout")
        router = Router(self._pool, self._tenancy, shape, self._publisher)
        consumer = Consumer(
            nodes,
            shape,
            shape.inbox,
            router.handle,
            prefetch=settings.router_prefetch,
            name="hub-router",
            retry=self._retry,
            gate=self._gate,
        )
        self._task = asyncio.create_task(
            consumer.run(self._stopping, settings.shutdown_grace), name="router"
        )

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
        if self._gate is not None:
            await self._gate.stop()
        if self._publisher is not None:
            await self._publisher.close()
        if self._pool is not None:
            await self._pool.close()
