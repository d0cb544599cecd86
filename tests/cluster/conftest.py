"""The local three-node RabbitMQ cluster (deploy/cluster/cluster.sh), for the tests here.

The session's fixture starts the cluster unless it runs already, and stops it
at the end only if it started it. The machine's own node is not used.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "cluster" / "cluster.sh"
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
NODES = ("hub1", "hub2", "hub3")
# In parallel runs (`pytest -n N --dist loadgroup`, as `make test` runs), every test of
# the cluster goes to one worker: they start, stop and kill its nodes, and share them.
CLUSTER_WORKER = pytest.mark.xdist_group("cluster")
GUEST = {"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()}


@dataclass(frozen=True)
class Cluster:
    urls: tuple[str, ...]  # AMQP, one per node
    management: tuple[str, ...]  # the management API's base URL, one per node
    host: str

    def node(self, i: int) -> str:
        return f"{NODES[i]}@{self.host}"

    def index(self, node: str) -> int:
        """0-2 for a node name such as hub2@localhost."""
        return NODES.index(node.split("@")[0])

    async def ctl(self, node: int, *args: str) -> str:
        """rabbitmqctl ARGS against node `node` (0-2), with the cluster's environment."""
        out = await script_async("ctl", str(node + 1), *args)
        return out

    async def kill(self, node: int) -> None:
        """kill -9 node `node` (0-2)."""
        await script_async("kill", str(node + 1))

    async def restart(self) -> None:
        """Start the nodes that are down, and wait until all three run in one cluster."""
        await script_async("start", within=240)

    async def api(self, path: str, *, via: int) -> Any:
        """GET the management API's PATH through node `via` (0-2)."""
        async with (
            aiohttp.ClientSession(headers=GUEST) as http,
            http.get(f"{self.management[via]}{path}") as response,
        ):
            response.raise_for_status()
            return await response.json()

    async def leader(self, queue: str, *, via: int) -> str | None:
        """The node that leads quorum queue `queue`, as node `via` sees it (None: no leader)."""
        shown = await self.api(f"/queues/%2F/{quote(queue, safe='')}", via=via)
        leader = shown.get("leader")
        return str(leader) if leader else None


def script(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


async def script_async(*args: str, within: float = 30) -> str:
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT), *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        async with asyncio.timeout(within):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()  # cluster.sh, and with it the rabbitmqctl it waits for
        await process.wait()
        raise
    assert process.returncode == 0, f"cluster.sh {' '.join(args)}: {err.decode()}"
    return out.decode()


def amqp_urls(stdout: str) -> tuple[str, ...]:
    line = next(x for x in stdout.splitlines() if x.startswith("HUB_AMQP_URL="))
    return tuple(line.removeprefix("HUB_AMQP_URL=").split(","))


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if not RABBITMQ_SERVER.exists():
        pytest.skip(f"RabbitMQ is not installed ({RABBITMQ_SERVER} is missing)")
    started = script("status").returncode != 0
    if started:
        run = script("start", timeout=240)
        assert run.returncode == 0, f"cluster.sh start failed:\n{run.stderr}"
    else:
        run = script("url")
    urls = amqp_urls(run.stdout)
    assert len(urls) == len(NODES), run.stdout
    try:
        yield Cluster(
            urls=urls,
            management=tuple(f"http://127.0.0.1:{15681 + i}/api" for i in range(len(NODES))),
            host=os.environ.get("HUB_CLUSTER_HOST", "localhost"),
        )
    finally:
        if started:
            stop = script("stop", timeout=120)
            assert stop.returncode == 0, f"cluster.sh stop failed:\n{stop.stderr}"
