"""`Ops`: the connections an operator's command needs, opened once, closed at the end."""

from __future__ import annotations

import asyncio
import getpass
import os
import socket
from types import TracebackType

from hub.broker.connection import Nodes
from hub.broker.publisher import Publisher
from hub.broker.topology import Topology
from hub.settings import Settings
from hub.store.pool import Pool, create_pool
from hub.tenancy import Tenancy
from hub.wiring import topology


def operator_name() -> str:
    """Who is acting, for the audit: HUB_OPERATOR, else user@host."""
    given = os.environ.get("HUB_OPERATOR", "").strip()
    if given:
        return given
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class Ops:
    """The database pool, the broker nodes and a publisher (opened on first use)."""

    def __init__(self, settings: Settings, tenancy: Tenancy, pool: Pool) -> None:
        self.settings = settings
        self.tenancy = tenancy
        self.pool = pool
        self.nodes = Nodes(settings.amqp_urls)
        self.topology: Topology = topology(settings, tenancy)
        self._publisher: Publisher | None = None
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, settings: Settings, tenancy: Tenancy) -> Ops:
        pool = await create_pool(settings.database_url, settings.namespace, min_size=0, max_size=4)
        return cls(settings, tenancy, pool)

    @property
    def publisher(self) -> Publisher:
        if self._publisher is None:
            self._publisher = Publisher(
                self.nodes, self.topology, self.settings.publish_timeout, "hub-ops"
            )
        return self._publisher

    async def close(self) -> None:
        if self._publisher is not None:
            await self._publisher.close()
        await self.pool.close()

    async def __aenter__(self) -> Ops:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
