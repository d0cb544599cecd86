"""The metrics port of a role run on its own (`hub ingress`, `hub router`, `hub deliver`
with HUB_METRICS_ADDR): `/metrics` with what this process counted (deliveries,
attempts, retries, dead letters, requests, publish confirms, its circuits) and
`/healthz`, for Prometheus to scrape each process. The store's and the broker's
gauges stay on the ops port (`hub ops`), which reads them once for all.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from hub.ops import metrics
from hub.settings import Address

log = structlog.get_logger(__name__)


class MetricsService:
    name = "metrics"

    def __init__(self, address: Address, grace: float) -> None:
        self._address = address
        self._grace = grace
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        assert self._runner is not None
        return int(self._runner.addresses[0][1])

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", _process_metrics)
        app.router.add_get("/healthz", _alive)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=self._grace)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self._address.host, self._address.port).start()
        except BaseException:
            await self.stop()
            raise
        log.info("metrics listening", url=f"http://{self._address.host}:{self.port}/metrics")

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()


async def _process_metrics(request: web.Request) -> web.Response:
    headers = {"Content-Type": metrics.CONTENT_TYPE}
    return web.Response(body=metrics.render_process(), headers=headers)


async def _alive(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})
