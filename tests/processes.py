"""The hub's roles as real processes, for tests that run it as operators do."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import aiohttp

from tests.conftest import eventually
from tests.fixtures_tenancy import INTOUCH_ID, INTOUCH_KEY, _sha

HUB = [sys.executable, "-m", "hub"]

_TENANCY = f"""
[[provider]]
name = "intouch"
identifier = "{INTOUCH_ID}"
key_sha256 = "{_sha(INTOUCH_KEY)}"

[[provider]]
name = "crm"
identifier = "crm-identifier"
key_sha256 = "{_sha("crm")}"
adapter = "generic_json"
url = "URL"
capabilities = ["user.save"]
settings = {{ key_env = "HUB_TEST_PARTNER_TOKEN", timeout = 5 }}
concurrency = 4

[[client]]
name = "acme"
  [[client.club]]
  name = "downtown"
  ids.intouch = {{ client = "456", club = "123" }}
  ids.crm = {{ client = "C1", club = "K1" }}
  [[client.subscription]]
  provider = "crm"
  receives = ["PROSPECT"]
  with = []
"""


def one_partner_tenancy(url: str) -> str:
    """intouch sends; "crm" (generic_json at `url`, token in HUB_TEST_PARTNER_TOKEN) receives
    prospects, without owner or lead source."""
    return _TENANCY.replace("URL", url)


@contextlib.asynccontextmanager
async def stopping(roles: list[Role], logs: Path) -> AsyncIterator[None]:
    """Stop every process of `roles` at the end; print their logs if the test failed."""
    try:
        yield
    except BaseException:
        show_logs(logs)
        raise
    finally:
        for role in roles:
            await role.stop()


def show_logs(folder: Path) -> None:
    for log in sorted(folder.glob("*.log")):
        print(f"--- {log.name}\n{log.read_text()[-4000:]}")


@dataclass
class Role:
    """Processes of one hub role, each logging to a file of its own."""

    name: str
    args: list[str]
    env: dict[str, str]
    logs: Path
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)
    started: itertools.count[int] = field(default_factory=itertools.count)

    async def start(self) -> asyncio.subprocess.Process:
        log = self.logs / f"{self.name}-{next(self.started)}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                *HUB, *self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        return process

    async def kill_one(self) -> None:
        process = next(p for p in self.processes if p.returncode is None)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        self.processes.remove(process)

    async def stop(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


async def consumers(url: str, want: dict[str, int]) -> None:
    """Wait until each queue has its consumers (a passive declare sees them at once)."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()

        async def enough() -> bool:
            for name, count in want.items():
                try:
                    queue = await channel.declare_queue(name, passive=True)
                except aio_pika.exceptions.ChannelClosed:
                    return False
                if queue.declaration_result.consumer_count < count:
                    return False
            return True

        await eventually(reopening(channel, enough), within=60)


def reopening(
    channel: aio_pika.abc.AbstractChannel, probe: Callable[[], Awaitable[bool]]
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        if channel.is_closed:
            await channel.reopen()
        return await probe()

    return check


async def ready(port: int) -> None:
    async with aiohttp.ClientSession() as http:

        async def answers() -> bool:
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(answers, within=30)
