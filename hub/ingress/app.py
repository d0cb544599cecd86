"""The ingress application: `create_app(resources)`, and the service that serves it.

`create_app` only wires routes and middleware to resources it is given;
`IngressService` opens those resources (publisher, pool), listens, and on
stop finishes the requests in flight before it closes them.
"""

from __future__ import annotations

import json

import structlog
from aiohttp import web

from hub.broker.connection import Nodes
from hub.broker.publisher import Publisher
from hub.broker.topology import INBOX, Topology
from hub.connector.documents import Kind
from hub.errors import ConfigError
from hub.ingress import handlers
from hub.ingress.batcher import InboxBatcher
from hub.ingress.context import RESOURCES, Resources
from hub.ingress.middleware import answer_errors
from hub.ops import metrics
from hub.settings import Settings
from hub.store.health import NotServing, probe
from hub.store.migrate import check_schema
from hub.store.pool import DatabaseError, create_pool
from hub.tenancy import Tenancy

log = structlog.get_logger(__name__)

BASE = "/connector/api/2011-11"


def create_app(resources: Resources) -> web.Application:
    # aiohttp refuses bodies over client_max_size itself; handlers check first.
    app = web.Application(middlewares=[answer_errors], client_max_size=resources.settings.max_body)
    app[RESOURCES] = resources
    app.router.add_post(f"{BASE}/user", handlers.save(Kind.USER))
    app.router.add_get(f"{BASE}/user", handlers.fetch(Kind.USER, "recordID"), allow_head=False)
    app.router.add_post(f"{BASE}/staff", handlers.save(Kind.STAFF))
    app.router.add_get(f"{BASE}/staff", handlers.fetch(Kind.STAFF, "recordID"), allow_head=False)
    app.router.add_post(f"{BASE}/leadsource", handlers.save(Kind.LEADSOURCE))
    app.router.add_get(
        f"{BASE}/leadsource", handlers.fetch(Kind.LEADSOURCE, "identifier"), allow_head=False
    )
    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/readyz", readyz, allow_head=False)
    return app


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the broker takes messages and the database answers, for writing,
    with the code's schema."""
    resources = request.app[RESOURCES]
    broker = await resources.publisher.ready()
    database = await _database_ready(resources)
    status = 200 if broker and database else 503
    return web.Response(
        status=status,
        text=json.dumps({"broker": broker, "database": database}),
        content_type="application/json",
    )


async def _database_ready(resources: Resources) -> bool:
    try:
        await probe(resources.pool, resources.settings.namespace)
    except (TimeoutError, OSError, DatabaseError, NotServing):
        return False
    except Exception:  # asyncpg raises many kinds when the server is away
        log.warning("database not ready", exc_info=True)
        return False
    return True


class IngressService:
    """The ingress as a component of `hub run` / `hub ingress`."""

    name = "ingress"

    def __init__(self, settings: Settings, tenancy: Tenancy) -> None:
        self._settings = settings
        self._tenancy = tenancy
        self._runner: web.AppRunner | None = None
        self._resources: Resources | None = None

    @property
    def port(self) -> int:
        """The port listened on (useful when the address asked for port 0)."""
        assert self._runner is not None
        return int(self._runner.addresses[0][1])

    async def start(self) -> None:
        settings = self._settings
        # The inbox's arguments must be the router's (wiring.topology), or one of them
        # cannot declare it; the ingress declares no partner's queue.
        topology = Topology(settings.namespace, max_length=settings.queue_max_length)
        publisher = Publisher(
            Nodes(settings.amqp_urls), topology, settings.publish_timeout, "hub-ingress"
        )
        if not await publisher.ready():
            log.warning("broker not reachable yet; saves answer 503 until it is")
        # min_size=0: the ingress starts and saves without the database; GETs need it.
        pool = await create_pool(settings.database_url, settings.namespace, min_size=0)
        try:
            # A database away is fine here (saves do not need it), a wrong schema is not.
            await check_schema(pool, settings.namespace)
        except DatabaseError:
            log.warning("database not reachable yet; reads answer DATABASE until it is")
        except ConfigError:
            await pool.close()
            await publisher.close()
            raise
        batcher = InboxBatcher(
            publisher,
            topology.inbox_exchange.name,
            INBOX,
            timeout=settings.publish_timeout,
            linger=settings.ingress_linger,
            max_waiting=settings.ingress_max_waiting,
        )
        batcher.start()
        metrics.ingress_waiting(lambda: batcher.waiting)
        self._resources = Resources(settings, self._tenancy, topology, publisher, batcher, pool)
        self._runner = web.AppRunner(
            create_app(self._resources),
            access_log=None,
            shutdown_timeout=settings.shutdown_grace,
        )
        await self._runner.setup()
        address = settings.ingress_addr
        await web.TCPSite(self._runner, address.host, address.port, reuse_port=True).start()
        log.info("ingress listening", url=f"http://{address.host}:{self.port}{BASE}")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()  # stops listening, lets requests in flight finish
        if self._resources is not None:
            await self._resources.batcher.stop()
            await self._resources.publisher.close()
            await self._resources.pool.close()
