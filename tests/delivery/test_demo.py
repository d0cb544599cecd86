"""`hub demo` (what `make run` runs): both fake partners get the prospect, mapped."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from hub.settings import Settings
from hub.tenancy import load
from hub.wiring import topology
from tests.conftest import AMQP_URL, delete_topology
from tests.integration.test_process import free_port

DEMO = Path(__file__).parents[2] / "deploy" / "demo"


def demo_env(settings: Settings, port: int) -> dict[str, str]:
    env = dict(os.environ)
    for line in (DEMO / "hub.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env | {
        "HUB_NAMESPACE": settings.namespace,
        "HUB_INGRESS_ADDR": f"127.0.0.1:{port}",
        "HUB_OPS_ADDR": "127.0.0.1:0",
        "HUB_DATABASE_URL": settings.database_url,
        "HUB_AMQP_URL": settings.amqp_urls[0],
    }


async def test_the_demo_delivers_to_both_partners_with_owner_and_lead_source(
    settings: Settings,
) -> None:
    env = demo_env(settings, free_port())
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub",
        "demo",
        env=env,
        cwd=DEMO.parents[1],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        while not any(line.startswith("demo: post more") for line in lines):
            line = await asyncio.wait_for(process.stdout.readline(), 40)
            assert line, "the demo stopped: " + "".join(lines)
            lines.append(line.decode())
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        await delete_topology(AMQP_URL, topology(settings, load(DEMO / "tenancy.toml", env)))
    received = {line.split("'")[1]: line for line in lines if " received " in line}
    assert set(received) == {"clubos", "legacy"}
    assert "'ownerId': 'S-" in received["clubos"]
    assert "'leadSourceId': 'L-" in received["clubos"]
    assert "'ownerID': 'S-" in received["legacy"]
    assert "'leadSource': 'walk-in'" in received["legacy"]
