"""The fake partner of `hub bench e2e`: a FakeGenericJson in a process of its own.

The partner is `adapters.fakes.generic_json.FakeGenericJson` (the contract's
checks and all), its user saves wrapped to note when each hub UUID arrived
(`time.monotonic()`, the clock every process of the machine shares, taken
as the save is accepted). It runs in a spawned process on uvloop, so that
it never shares an event loop with the load generator or the bench, and its
CPU time can be read apart. The parent talks to it through a pipe:

    count   how many distinct UUIDs have arrived since the last take
    take    the arrivals (UUID -> times) and the answers by status; then
            forget them, so that the next phase starts empty

The fakes are test code: only this module imports them, and only `hub bench
e2e` imports this module, so the hub's own processes never load them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from aiohttp import web

from adapters.base import Capability
from adapters.fakes.generic_json import FakeGenericJson
from hub.bench import eventloop
from hub.errors import HubError

_START_WITHIN = 30.0
_ANSWER_WITHIN = 30.0
_STOP_WITHIN = 5.0


@dataclass(frozen=True, slots=True)
class Arrivals:
    """What the partner saw: accepted saves by hub UUID, and its answers by status."""

    saves: dict[str, list[float]]
    statuses: dict[int, int]


class Partner:
    """The parent's handle on the partner process."""

    def __init__(self, url: str, pid: int, control: Connection) -> None:
        self.url = url
        self.pid = pid
        self._control = control

    def count(self) -> int:
        return int(self._ask("count"))

    def take(self) -> Arrivals:
        arrivals = self._ask("take")
        assert isinstance(arrivals, Arrivals)
        return arrivals

    def _ask(self, what: str) -> Any:
        self._control.send(what)
        if not self._control.poll(_ANSWER_WITHIN):
            raise HubError(f"the fake partner did not answer {what!r} within {_ANSWER_WITHIN:g} s")
        return self._control.recv()


@contextmanager
def partner_process(token: str) -> Iterator[Partner]:
    """Start the fake partner (bearer `token`) in its own process; stop it on exit."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(
        target=serve, args=(token, theirs), name="hub-bench-partner", daemon=True
    )
    process.start()
    theirs.close()
    try:
        try:
            url = ours.recv() if ours.poll(_START_WITHIN) else None
        except EOFError:
            url = None
        if url is None:
            raise HubError(f"the fake partner did not start within {_START_WITHIN:g} s")
        assert process.pid is not None
        yield Partner(url, process.pid, ours)
    finally:
        with suppress(OSError):
            ours.send("stop")
        process.join(_STOP_WITHIN)
        if process.is_alive():
            process.kill()
            process.join()
        ours.close()


class TimedPartner(FakeGenericJson):
    """FakeGenericJson (user saves only) that notes when each accepted save arrived."""

    def __init__(self, token: str) -> None:
        super().__init__(token, {Capability.USER_SAVE})
        self.saves: dict[str, list[float]] = {}

    def routes(self) -> list[web.RouteDef]:
        routes = super().routes()
        return [self._timed(route) if route.method == "PUT" else route for route in routes]

    def _timed(self, route: web.RouteDef) -> web.RouteDef:
        save = route.handler

        async def timed(request: web.Request) -> web.StreamResponse:
            response: web.StreamResponse = await save(request)
            if response.status < 300:
                self.saves.setdefault(request.match_info["uuid"], []).append(time.monotonic())
            return response

        return web.RouteDef(route.method, route.path, timed, route.kwargs)

    def take(self) -> Arrivals:
        statuses = Counter(request.status for request in self.requests)
        arrivals = Arrivals(self.saves, dict(statuses))
        self.saves = {}
        self.requests.clear()
        self.users.clear()
        self.partner_ids.clear()
        self.creates.clear()
        return arrivals


def serve(token: str, control: Connection) -> None:
    """The partner process: listen, send the URL, answer the parent until it says stop."""
    eventloop.run(_serve(token, control))


async def _serve(token: str, control: Connection) -> None:
    partner = TimedPartner(token)
    control.send(await partner.start())
    loop = asyncio.get_running_loop()
    try:
        while True:
            try:
                # A thread waits on the pipe; the answer is made on the loop, between requests.
                what = await loop.run_in_executor(None, control.recv)
            except (EOFError, OSError):
                return  # the parent is gone
            if what == "count":
                control.send(len(partner.saves))
            elif what == "take":
                control.send(partner.take())
            else:
                return
    finally:
        await partner.stop()
        control.close()
