"""A hub started on a database without its schema, or with an older one, refuses to start.

Before: `hub run` on a fresh database answered `/readyz` 200 and then failed
every message, the keeper requeueing its own with no pause. Now every role
exits 2 with a message naming `hub migrate`, and `--migrate` applies the
migrations first (several processes at once: the advisory lock serialises).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from hub.broker.topology import Topology
from hub.store.migrate import drop, migrate, migrations
from tests.conftest import AMQP_URL, DATABASE_URL, delete_topology
from tests.fixtures_tenancy import ENV
from tests.integration.test_process import HUB, free_port
from tests.processes import one_partner_tenancy, ready

pytestmark = pytest.mark.timeout(120)


def _env(namespace: str, tenancy_file: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        **ENV,
        "HUB_AMQP_URL": AMQP_URL,
        "HUB_DATABASE_URL": DATABASE_URL,
        "HUB_NAMESPACE": namespace,
        "HUB_TENANCY_FILE": str(tenancy_file),
        "HUB_INGRESS_ADDR": f"127.0.0.1:{port}",
        "HUB_OPS_ADDR": "127.0.0.1:0",
    }


async def _exit_of(env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *HUB, *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        async with asyncio.timeout(30):
            out, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"hub {' '.join(args)} did not stop by itself") from None
    return int(process.returncode or 0), out.decode()


@pytest.fixture
async def cleanup(namespace: str) -> AsyncIterator[None]:
    yield None
    await drop(DATABASE_URL, namespace)
    await delete_topology(AMQP_URL, Topology(namespace, partners=("crm", "legacy", "clubos")))


async def test_every_role_refuses_an_empty_database(
    namespace: str, tmp_path: Path, cleanup: object
) -> None:
    tenancy_file = tmp_path / "receiving.toml"  # a partner that receives: `deliver` has work
    tenancy_file.write_text(one_partner_tenancy("http://127.0.0.1:9"))
    env = _env(namespace, tenancy_file, free_port()) | {"HUB_TEST_PARTNER_TOKEN": "t"}
    for role in ("run", "router", "deliver", "ingress"):
        code, out = await _exit_of(env, role)
        assert code == 2, (role, out)
        assert "has no schema" in out, (role, out)
        assert "hub migrate" in out, (role, out)


async def test_an_older_schema_is_refused_and_migrate_brings_it_up(
    namespace: str, tenancy_file: Path, cleanup: object
) -> None:
    await migrate(DATABASE_URL, namespace)
    last = migrations()[-1]
    connection = await asyncpg.connect(DATABASE_URL)
    try:
        await connection.execute(
            f'DELETE FROM "{namespace}".schema_migrations WHERE number = $1', last[0]
        )
    finally:
        await connection.close()
    env = _env(namespace, tenancy_file, free_port())
    code, out = await _exit_of(env, "router")
    assert code == 2, out
    assert "older than this hub" in out, out
    assert f"{last[0]:03d}_{last[1]}" in out, out


async def test_run_with_migrate_starts_on_an_empty_database(
    namespace: str, tenancy_file: Path, cleanup: object
) -> None:
    port = free_port()
    env = _env(namespace, tenancy_file, port)
    process = await asyncio.create_subprocess_exec(
        *HUB, "run", "--migrate", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await ready(port)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/readyz") as r,
        ):
            assert (r.status, await r.json()) == (200, {"broker": True, "database": True})
    finally:
        process.terminate()
        async with asyncio.timeout(30):
            assert await process.wait() == 0


async def test_hub_check_names_a_missing_schema(
    namespace: str, tenancy_file: Path, cleanup: object
) -> None:
    """`hub check` (a container's probe) says what is wrong, not a traceback."""
    code, out = await _exit_of(_env(namespace, tenancy_file, free_port()), "check")
    assert code == 1, out
    assert "has no schema" in out, out
    assert "Traceback" not in out, out
