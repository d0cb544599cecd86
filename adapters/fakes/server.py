"""What every fake partner shares: a real aiohttp server, its request log and failure knobs.

A fake is started on a real port (`await fake.start()` returns its base
URL) and answers over real HTTP, so adapters are tested with their real
client code. Before a fake's own handlers run, in this order:

    delay       every answer waits `delay` seconds (to exceed an adapter's timeout)
    down        while set, everything answers 503
    fail_next   the next n requests answer the given status, Retry-After and body
    auth        a wrong or missing bearer token answers 401

and after them `answer_late(seconds)`: the next create call is carried out
(the record stored) and only then answered, `seconds` later: the partner that
made the record but whose answer came after the hub had stopped waiting.

Every request is kept in `requests` (in the order answered), with the
status it was answered. Every create call a fake receives is counted in
`creates` (per the fake's key for the person or record) by `count_create`,
each time: a second create of a known person is counted even when the fake
answers it as an update, finds it already there or deduplicates it, because
a fake that quietly absorbs the second create would let a test pass whatever
the hub sends. What "a create call" is on each API is said in each fake's
docstring. This module must never be imported by the hub's own code (only by
tests, the demo and the fakes), and a fake must never reach out to anything.
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from adapters.base import Capability

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Where a handler marks its request as a create call (the key it counted).
_CREATE = web.RequestKey("create", str)


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the fake saw it, and the status it answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes
    json: Any  # the body decoded as JSON, or None
    status: int
    create: str | None = None  # the key counted in `creates`, if this was a create call


class Refused(Exception):
    """Raised by a handler to answer an error in the fake's own error format."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class _Failure:
    left: int
    status: int
    retry_after: float | None
    body: str | None


class FakeServer(abc.ABC):
    """A fake partner; subclasses give the routes, the auth check and the error format."""

    base_path = ""

    def __init__(self, capabilities: set[Capability] | None) -> None:
        self.capabilities = (
            frozenset(Capability) if capabilities is None else frozenset(capabilities)
        )
        self.requests: list[Received] = []
        self.delay = 0.0
        self.down = False
        # Latest user and the ID given for it, by the fake's key (see each fake).
        self.users: dict[str, dict[str, Any]] = {}
        self.partner_ids: dict[str, str] = {}
        # Every create call received, per key: 2 is a second create, however answered.
        self.creates: Counter[str] = Counter()
        self.url = ""
        self._failures: list[_Failure] = []
        self._late: list[float] = []
        self._runner: web.AppRunner | None = None

    # -- knobs --------------------------------------------------------------------------------

    def fail_next(
        self, n: int, status: int = 500, retry_after: float | None = None, body: str | None = None
    ) -> None:
        """The next `n` requests of any kind answer `status` (with Retry-After if given)."""
        self._failures.append(_Failure(n, status, retry_after, body))

    def answer_late(self, seconds: float, n: int = 1) -> None:
        """The next `n` create calls are carried out, then answered `seconds` later."""
        self._late += [seconds] * n

    @property
    def create_calls(self) -> int:
        """Create calls received in all, of every key."""
        return sum(self.creates.values())

    def count_create(self, request: web.Request, key: str) -> None:
        """Count `request` as a create call for `key` (a handler's call, every time)."""
        self.creates[key] += 1
        request[_CREATE] = key

    async def wait_for_users(
        self,
        count: int,
        timeout: float = 10.0,  # noqa: ASYNC109 - a test's plain deadline, not a cancel scope
    ) -> list[dict[str, Any]]:
        """The users once there are at least `count`; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while len(self.users) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.users)} users, not {count}, within {timeout} s")
            await asyncio.sleep(0.01)
        return list(self.users.values())

    # -- life ---------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on `host:port` (0: any free port); the base URL adapters are given."""
        app = web.Application(middlewares=[self._middleware], client_max_size=1024 * 1024)
        app.add_routes(self.routes())
        runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound = runner.addresses[0][1]
        self.url = f"http://{host}:{bound}{self.base_path}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- what subclasses give -----------------------------------------------------------------

    @abc.abstractmethod
    def routes(self) -> list[web.RouteDef]: ...

    @abc.abstractmethod
    def authorised(self, request: web.Request) -> bool: ...

    @abc.abstractmethod
    def error(self, status: int, message: str, body: str | None = None) -> web.Response:
        """An error answer in this partner's format (`body` as given, if given)."""

    def require(self, capability: Capability) -> None:
        """Answer 404, as a partner without this endpoint would, unless it has `capability`."""
        if capability not in self.capabilities:
            raise Refused(404, f"this partner has no {capability}")

    # -- the middleware -----------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        response = await self._answer(request, handler)
        create = request.get(_CREATE)
        if create is not None and self._late:
            await asyncio.sleep(self._late.pop(0))  # stored; the answer comes too late
        self.requests.append(
            Received(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=CIMultiDict(request.headers),
                body=body,
                json=_json_or_none(body),
                status=response.status,
                create=create,
            )
        )
        return response

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.down:
            return self.error(503, "down for maintenance")
        if self._failures:
            failure = self._failures[0]
            failure.left -= 1
            if failure.left <= 0:
                self._failures.pop(0)
            response = self.error(failure.status, "failing on purpose", failure.body)
            if failure.retry_after is not None:
                response.headers["Retry-After"] = f"{failure.retry_after:g}"
            return response
        if not self.authorised(request):
            return self.error(401, "wrong or missing bearer token")
        try:
            return await handler(request)
        except Refused as exc:
            return self.error(exc.status, exc.message)
        except web.HTTPException as exc:  # aiohttp's own 404 and 405
            return self.error(exc.status, exc.reason)


def _json_or_none(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None


def bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def command_line(module: str, description: str, port: int) -> argparse.ArgumentParser:
    """A fake's command line: `--host`, `--port` and `--capability`, to which it adds its own."""
    parser = argparse.ArgumentParser(
        prog=f"python -m adapters.fakes.{module}", description=description
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--capability", action="append", choices=[c.value for c in Capability])
    return parser


def secret(parser: argparse.ArgumentParser, variable: str) -> str:
    """The value of the environment variable a `--...-env` option names; exit 2 if unset."""
    value = os.environ.get(variable)
    if not value:
        parser.error(f"{variable} is not set")
    return value


def capabilities_of(args: argparse.Namespace) -> set[Capability] | None:
    """The `--capability` options given; None (all of the fake's) when there are none."""
    return {Capability(c) for c in args.capability} if args.capability else None


def seed(values: list[str], parts: int, add: Callable[..., object]) -> None:
    """`add(*parts)` for each command line seed such as CLUB:EMAIL."""
    for value in values:
        add(*split_seed(value, parts))


def split_seed(value: str, parts: int) -> list[str]:
    """'a:b:rest' -> ['a', 'b', 'rest'] for a command line seed of `parts` parts."""
    pieces = value.split(":", parts - 1)
    if len(pieces) != parts or not all(pieces):
        raise SystemExit(f"expected {parts} parts separated by ':', not {value!r}")
    return pieces


async def serve(fake: FakeServer, host: str, port: int, what: str) -> None:
    """Run `fake` until SIGINT or SIGTERM, after one line saying where it listens."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    url = await fake.start(host, port)
    print(f"{what} listening on {url}", flush=True)
    try:
        await stop.wait()
    finally:
        await fake.stop()
