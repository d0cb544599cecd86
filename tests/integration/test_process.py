"""The `hub` command as operators run it: real processes, real signals."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from hub.router import RouterService
from hub.settings import Settings
from hub.tenancy import Tenancy
from tests.conftest import eventually
from tests.fixtures_tenancy import ENV, INTOUCH_ID, INTOUCH_KEY, user_xml
from tests.processes import ready

HUB = [sys.executable, "-m", "hub"]
AUTH = {"Authorization": f"Bearer {INTOUCH_KEY}", "Content-Type": "application/xml"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(settings: Settings, port: int) -> dict[str, str]:
    return {
        **os.environ,
        **ENV,
        "HUB_AMQP_URL": settings.amqp_urls[0],
        "HUB_DATABASE_URL": settings.database_url,
        "HUB_NAMESPACE": settings.namespace,
        "HUB_TENANCY_FILE": str(settings.tenancy_file),
        "HUB_INGRESS_ADDR": f"127.0.0.1:{port}",
        "HUB_OPS_ADDR": "127.0.0.1:0",
    }


async def start_hub(env: dict[str, str], port: int) -> asyncio.subprocess.Process:
    """`hub run` as a process, once its /readyz answers 200."""
    # Not a pipe: nobody reads it, and a full pipe would block the hub's logging.
    process = await asyncio.create_subprocess_exec(*HUB, "run", env=env, stderr=subprocess.DEVNULL)
    await ready(port)
    return process


@pytest.fixture
async def hub_process(settings: Settings) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    port = free_port()
    process = await start_hub(environment(settings, port), port)
    root = f"http://127.0.0.1:{port}"
    try:
        yield process, root
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_sigterm_drains_and_exits_0(
    hub_process: tuple[asyncio.subprocess.Process, str], settings: Settings, tenancy: Tenancy
) -> None:
    process, root = hub_process
    url = f"{root}/connector/api/2011-11/user"
    statuses: list[int] = []

    async def partner(http: aiohttp.ClientSession, worker: int) -> None:
        for n in range(1000):
            try:
                body = user_xml(f"P-{worker}-{n}")
                async with http.post(url, data=body, headers=AUTH) as r:
                    statuses.append(r.status)
            except aiohttp.ClientError:
                statuses.append(0)  # refused: the ingress had stopped listening
                return

    async def stop_midway() -> None:
        while statuses.count(200) < 50:  # noqa: ASYNC110 - other tasks fill the list
            await asyncio.sleep(0.01)
        process.send_signal(signal.SIGTERM)

    async with aiohttp.ClientSession() as http, asyncio.TaskGroup() as group:
        group.create_task(stop_midway())
        for worker in range(8):
            group.create_task(partner(http, worker))
    assert await asyncio.wait_for(process.wait(), 30) == 0
    assert statuses.count(200) >= 50
    assert set(statuses) <= {200, 0}, "a request in flight was not finished"

    # Every 200 is stored, or waiting in the inbox for the next router.
    router = RouterService(settings, tenancy)
    await router.start()
    try:
        pool = await asyncpg.connect(settings.database_url)

        async def all_stored() -> bool:
            count = await pool.fetchval(f"SELECT count(*) FROM {settings.namespace}.records")
            return bool(count == statuses.count(200))

        await eventually(all_stored)
        await pool.close()
    finally:
        await router.stop()


async def test_a_saved_record_is_read_back_through_the_process(
    hub_process: tuple[asyncio.subprocess.Process, str],
) -> None:
    _, root = hub_process
    base = f"{root}/connector/api/2011-11"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/user", data=user_xml("P-1"), headers=AUTH) as r:
            assert r.status == 200

        async def read_back() -> bool:
            params = {"provider": INTOUCH_ID, "recordID": "P-1"}
            async with http.get(f"{base}/user", params=params, headers=AUTH) as r:
                return r.status == 200 and "<firstname>Ada</firstname>" in await r.text()

        await eventually(read_back)


def test_an_invalid_tenancy_file_is_refused_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "tenancy.toml"
    bad.write_text('[[provider]]\nname = "Bad Name"\nidentifier = "x"\nkey_sha256 = "00"\n')
    result = subprocess.run(
        [*HUB, "run"],
        env={**os.environ, "HUB_TENANCY_FILE": str(bad)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "provider[0].name" in result.stderr
    assert "provider[0].key_sha256" in result.stderr


def test_migrate_applies_then_reports_up_to_date(settings: Settings) -> None:
    env = environment(settings, free_port())
    result = subprocess.run(
        [*HUB, "migrate"], env=env, capture_output=True, text=True, timeout=30, check=True
    )
    assert "up to date" in result.stdout  # the fixture migrated already
