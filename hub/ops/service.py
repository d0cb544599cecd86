"""The operators' port as a component of `hub ops` / `hub run`: it opens `Ops`, serves the
ops API, /metrics and the dashboard (`hub.ops.api`) on HUB_OPS_ADDR, and on stop
finishes the requests in flight before it closes `Ops`.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from hub.ops.api import create_app
from hub.ops.context import Ops
from hub.settings import Settings
from hub.tenancy import Tenancy

log = structlog.get_logger(__name__)


class OpsService:
    name = "ops"

    def __init__(self, settings: Settings, tenancy: Tenancy) -> None:
        self._settings = settings
        self._tenancy = tenancy
        self._ops: Ops | None = None
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The port listened on (useful when the address asked for port 0)."""
        assert self._runner is not None
        return int(self._runner.addresses[0][1])

    async def start(self) -> None:
        settings = self._settings
        if not settings.ops_token and not settings.ops_read_token:
            log.warning(
                "no HUB_OPS_TOKEN or HUB_OPS_READ_TOKEN: only /healthz and /metrics are open"
            )
        address = settings.ops_addr
        self._ops = await Ops.open(settings, self._tenancy)
        try:
            self._runner = web.AppRunner(
                create_app(self._ops, settings),
                access_log=None,
                shutdown_timeout=settings.shutdown_grace,
            )
            await self._runner.setup()
            await web.TCPSite(self._runner, address.host, address.port).start()
        except BaseException:
            await self.stop()  # a port in use: release the pool before the start fails
            raise
        log.info("ops listening", url=f"http://{address.host}:{self.port}/")

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()  # stops listening, lets requests in flight finish
        if self._ops is not None:
            ops, self._ops = self._ops, None
            await ops.close()
