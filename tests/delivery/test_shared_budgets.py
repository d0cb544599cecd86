"""Two `hub deliver` processes share each partner's budgets: its rate, its daily quota, its circuit.

The ingress and router run in the test's loop; the delivery runs as two real
`hub deliver` processes. Records are posted one at a time, so that each is a
job message of its own and both processes get work. Then: the two together
call a partner at its `rate_per_second`, not at twice it; a restart of both
does not spend Mindbody's daily quota again; and a circuit that one process
opens holds the other too.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from adapters.fakes.generic_json import FakeGenericJson
from adapters.fakes.mindbody import FakeMindbody
from hub.settings import Settings
from hub.tenancy import Tenancy, parse
from hub.wiring import topology
from tests.conftest import AMQP_URL, Hub, delete_topology, eventually
from tests.delivery.conftest import AUTH, TOKEN, Partner, prospect_xml
from tests.fixtures_tenancy import ENV, TENANCY_TOML
from tests.integration.test_process import environment, free_port
from tests.processes import Role, consumers, stopping

pytestmark = pytest.mark.timeout(300)

USERNAME, PASSWORD = "hub-staff", "mb-password"
RATE = 4.0


class TimedFake(FakeGenericJson):
    """A generic_json partner that notes when each save reached it."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.saved_at: list[float] = []

    async def _save_user(self, request: web.Request) -> web.Response:
        self.saved_at.append(time.monotonic())
        return await super()._save_user(request)


def tenancy_text(partners: list[Partner], urls: dict[str, str]) -> str:
    """The fixtures' tenancy with these partners receiving acme's people (no extras)."""
    text = TENANCY_TOML.split("  [[client.subscription]]")[0]
    downtown = '  ids.clubos = { client = "A1", club = "77" }\n'
    for p in partners:
        text = p.toml(urls[p.name]) + text.replace(
            downtown,
            downtown + f'  ids.{p.name} = {{ client = "C-{p.name}", club = "K-{p.name}" }}\n',
        )
    for p in partners:
        text += (
            f"  [[client.subscription]]\n  provider = {p.name!r}\n"
            f"  receives = {p.receives!r}\n  with = []\n"
        )
    return text


def attempts_logged(folder: Path, partner: str) -> list[int]:
    """The attempts at `partner` in each delivery process's log."""
    return [
        sum(
            1
            for line in log.read_text().splitlines()
            if '"attempt"' in line and f'"partner":"{partner}"' in line
        )
        for log in sorted(folder.glob("deliver-*.log"))
    ]


@dataclass
class Running:
    hub: Hub
    deliver: Role
    settings: Settings
    tenancy: Tenancy

    async def post(self, record_id: str) -> None:
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.hub.url}/user", data=prospect_xml(record_id), headers=AUTH) as r,
        ):
            assert r.status == 200, await r.text()

    async def deliverers(self, count: int) -> None:
        """Wait until `count` delivery processes consume every partner's queue."""
        shape = topology(self.settings, self.tenancy)
        await consumers(
            AMQP_URL, {shape.deliver(p.name).name: count for p in self.tenancy.receivers()}
        )

    async def database(self) -> asyncpg.Connection:
        connection = await asyncpg.connect(self.settings.database_url)
        await connection.execute(f"SET search_path TO {self.settings.namespace}")
        return connection


@contextlib.asynccontextmanager
async def running(
    settings: Settings, tmp_path: Path, partners: list[Partner]
) -> AsyncIterator[Running]:
    """The partners' fakes, the ingress and router here, and a `hub deliver` role (no
    process started yet); everything stopped and removed at the end."""
    urls = {}
    for p in partners:
        p.fake = p.make_fake()
        urls[p.name] = await p.fake.start()
    text = tenancy_text(partners, urls)
    tenancy_file = tmp_path / "tenancy.toml"
    tenancy_file.write_text(text)
    env = {**ENV, "HUB_TEST_PARTNER_TOKEN": TOKEN, "HUB_TEST_MINDBODY_PASSWORD": PASSWORD}
    tenancy = parse(tomllib.loads(text), env)
    settings = replace(settings, tenancy_file=tenancy_file, retry_tiers=(1, 2))
    role_env = (
        environment(settings, free_port())
        | env
        | {
            "HUB_RETRY_TIERS": "1,2",
            "HUB_BREAKER_THRESHOLD": "3",
            "HUB_BREAKER_COOLDOWN": "30",
        }
    )
    deliver = Role("deliver", ["deliver"], role_env, tmp_path)
    try:
        async with Hub(settings, tenancy) as hub, stopping([deliver], tmp_path):
            yield Running(hub, deliver, settings, tenancy)
    finally:
        for p in partners:
            assert p.fake is not None
            await p.fake.stop()
        await delete_topology(AMQP_URL, topology(settings, tenancy))


def mindbody(daily_quota: int, reserve: int) -> Partner:
    return Partner(
        "mb",
        ["user.save"],
        adapter="mindbody",
        make_fake=lambda: FakeMindbody(TOKEN, USERNAME, PASSWORD),
        settings=f'{{ key_env = "HUB_TEST_PARTNER_TOKEN", username = "{USERNAME}",'
        f' password_env = "HUB_TEST_MINDBODY_PASSWORD", daily_quota = {daily_quota},'
        f" quota_reserve = {reserve}, timeout = 2 }}",
    )


async def test_two_processes_call_a_partner_at_its_rate_and_a_restart_keeps_the_quota(
    settings: Settings, tmp_path: Path
) -> None:
    crm = Partner("crm", ["user.save"], rate_per_second=RATE, make_fake=lambda: TimedFake(TOKEN))
    mb = mindbody(daily_quota=12, reserve=2)  # 10 calls a day for the hub
    async with running(settings, tmp_path, [crm, mb]) as hub:
        await hub.deliver.start()
        await hub.deliver.start()
        await hub.deliverers(2)
        records = 32
        for n in range(records):
            await hub.post(f"R-{n}")
        fake = crm.fake
        assert isinstance(fake, TimedFake)
        await fake.wait_for_users(records, timeout=60)

        # Both processes delivered to crm, and together at about RATE calls a second.
        assert all(attempts_logged(tmp_path, "crm")), attempts_logged(tmp_path, "crm")
        times = sorted(fake.saved_at)
        rate = (len(times) - 1) / (times[-1] - times[0])
        print(f"combined rate at crm: {rate:.2f}/s for rate_per_second = {RATE:g}")
        assert rate <= RATE * 1.3, f"{rate:.2f} calls/s at a partner allowed {RATE:g}"

        # Mindbody: the day's calls, then a restart of both processes and more records.
        mb_fake = mb.fake
        assert isinstance(mb_fake, FakeMindbody)
        today = datetime.datetime.now(datetime.UTC).date()

        def calls() -> int:
            return sum(n for (site, day), n in mb_fake.calls.items() if day == today)

        await eventually(lambda: asyncio.sleep(0, calls() >= 10), within=30)
        before = calls()
        assert before <= 10, f"{before} calls to Mindbody by two processes, 10 allowed"
        await hub.deliver.stop()
        hub.deliver.processes.clear()
        await hub.deliver.start()
        await hub.deliver.start()
        await hub.deliverers(2)
        for n in range(6):
            await hub.post(f"S-{n}")
        await asyncio.sleep(8)  # the new records tried, and retried through the tiers
        print(f"calls to Mindbody today: {before} before the restart, {calls()} in all")
        assert calls() <= 10, f"{calls()} calls to Mindbody after a restart, 10 allowed"
        connection = await hub.database()
        try:
            used = await connection.fetchval("SELECT sum(used) FROM partner_quotas")
        finally:
            await connection.close()
        assert used == 10


async def test_a_circuit_one_process_opens_holds_the_other(
    settings: Settings, tmp_path: Path
) -> None:
    crm = Partner("crm", ["user.save"], max_attempts=10)
    async with running(settings, tmp_path, [crm]) as hub:
        fake = crm.fake
        assert isinstance(fake, FakeGenericJson)
        fake.down = True
        await hub.deliver.start()
        await hub.deliverers(1)
        connection = await hub.database()
        try:

            async def state() -> str | None:
                return await connection.fetchval(  # type: ignore[no-any-return]
                    "SELECT state FROM partner_health WHERE partner = 'crm'"
                )

            for n in range(3):  # the threshold
                await hub.post(f"R-{n}")
            await eventually(lambda: asyncio.sleep(0, opened(tmp_path)), within=30)

            # A second process starts while the circuit is open (for 30 s): neither calls.
            await hub.deliver.start()
            await hub.deliverers(2)
            calls = len(fake.requests)
            for n in range(3, 13):
                await hub.post(f"R-{n}")
            await asyncio.sleep(5)
            assert len(fake.requests) == calls, "a process called a partner whose circuit is open"
            assert await state() == "open"
        finally:
            await connection.close()


def opened(folder: Path) -> bool:
    """Whether the first delivery process logged its circuit opening."""
    return "circuit open" in (folder / "deliver-0.log").read_text()
