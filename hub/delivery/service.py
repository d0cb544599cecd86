"""The delivery component of `hub run` / `hub deliver`: workers and the keeper.

At start it builds every receiving provider's adapter (refusing settings the
adapter cannot use, and subscriptions it cannot take), each with its budget
and its circuit in PostgreSQL (shared with every other delivery process),
then consumes each partner's queue with that partner's concurrency as
prefetch, and every dead-letter queue into PostgreSQL. On stop, every
consumer drains.
"""

from __future__ import annotations

import asyncio
import os

import aiohttp
import structlog

from adapters import registry
from adapters.base import Adapter, AdapterError, Budget, Capability, PartnerConfig
from hub.broker.connection import Nodes
from hub.broker.consumer import Consumer, RetryBudget
from hub.delivery.breaker import Breaker
from hub.delivery.budget import SharedBudget, SharedCircuit
from hub.delivery.keeper import Keeper
from hub.delivery.mapping import Mapper
from hub.delivery.worker import PartnerWorker
from hub.errors import ConfigError
from hub.settings import Settings
from hub.store.health import DatabaseGate
from hub.store.migrate import check_schema
from hub.store.pool import Pool, create_pool
from hub.tenancy import Provider, Tenancy
from hub.wiring import topology

log = structlog.get_logger(__name__)


def build_adapter(
    provider: Provider,
    tenancy: Tenancy,
    session: aiohttp.ClientSession,
    budget: Budget | None = None,
) -> Adapter:
    """The provider's adapter, or ConfigError naming why it cannot be used.

    Without a `budget` the adapter counts its calls in its own memory (`hub partner
    check`, which makes a handful); the delivery processes give the shared one.
    """
    assert provider.adapter is not None  # receivers() has only providers with one
    assert provider.url is not None  # the tenancy refuses an adapter without a url
    config = PartnerConfig(
        name=provider.name,
        url=provider.url,
        capabilities=frozenset(Capability(c) for c in provider.capabilities),
        settings=provider.settings,
        env=os.environ,
        budget=budget,
    )
    try:
        adapter = registry.create(config, provider.adapter, session)
        for client in tenancy.clients.values():
            for subscription in client.subscriptions:
                if subscription.provider == provider.name:
                    adapter.check_subscription(subscription.receives)
    except AdapterError as exc:
        raise ConfigError(str(exc)) from exc
    if Capability.USER_SAVE not in config.capabilities:
        raise ConfigError(f"provider {provider.name!r} has an adapter but no user.save")
    return adapter


class DeliveryService:
    name = "delivery"

    def __init__(self, settings: Settings, tenancy: Tenancy) -> None:
        self._settings = settings
        self._tenancy = tenancy
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._pool: Pool | None = None
        self._gate: DatabaseGate | None = None
        self._sessions: list[aiohttp.ClientSession] = []

    async def start(self) -> None:
        settings, tenancy = self._settings, self._tenancy
        receivers = {p.name: p for p in tenancy.receivers()}
        self._pool = pool = await create_pool(
            settings.database_url,
            settings.namespace,
            min_size=0,  # a database away at start is waited out like one that goes later
            max_size=max(10, sum(p.concurrency for p in receivers.values()) + 4),
        )
        self._gate = gate = DatabaseGate(pool, settings.namespace)
        try:
            await check_schema(pool, settings.namespace, gate)
            adapters = [
                build_adapter(
                    p,
                    tenancy,
                    self._session(),
                    SharedBudget(pool, p.name, p.rate_per_second),
                )
                for p in receivers.values()
            ]
        except ConfigError:
            await self._close_sessions()
            await pool.close()
            self._pool = None
            raise
        nodes = Nodes(settings.amqp_urls)
        shape = topology(settings, tenancy)
        mapper = Mapper(pool, settings.mapping_ttl)
        consumers: list[Consumer] = []
        for adapter in adapters:
            provider = receivers[adapter.config.name]
            breaker = Breaker(
                provider.name,
                threshold=settings.breaker_threshold,
                cooldown=settings.breaker_cooldown,
                store=SharedCircuit(pool, provider.name),
            )
            worker = PartnerWorker(
                adapter, tenancy, pool, mapper, breaker, concurrency=provider.concurrency
            )
            consumers.append(
                Consumer(
                    nodes,
                    shape,
                    shape.deliver(provider.name),
                    worker.handle,
                    prefetch=provider.concurrency,
                    name=f"hub-deliver-{provider.name}",
                    retry=RetryBudget(
                        attempts=3, seconds=10, tiers=True, max_attempts=provider.max_attempts
                    ),
                    gate=gate,
                )
            )
        dead_queues = [(shape.inbox_dead, None)] + [
            (shape.dead_letters_of(shape.deliver(p)), p) for p in receivers
        ]
        for queue, partner in dead_queues:
            keeper = Keeper(pool, queue.name, partner)
            consumers.append(
                Consumer(
                    nodes, shape, queue, keeper.handle, prefetch=16, name="hub-keeper", gate=gate
                )
            )
        self._tasks = [
            asyncio.create_task(c.run(self._stopping, settings.shutdown_grace)) for c in consumers
        ]
        log.info("delivering", partners=sorted(receivers))

    def _session(self) -> aiohttp.ClientSession:
        """One HTTP session per partner (its rate is its budget's, not the session's)."""
        session = aiohttp.ClientSession()
        self._sessions.append(session)
        return session

    async def _close_sessions(self) -> None:
        for session in self._sessions:
            await session.close()
        self._sessions.clear()

    async def stop(self) -> None:
        self._stopping.set()
        await asyncio.gather(*self._tasks)
        if self._gate is not None:
            await self._gate.stop()
        await self._close_sessions()
        if self._pool is not None:
            await self._pool.close()
