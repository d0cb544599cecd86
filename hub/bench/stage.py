"""A hub of its own for `hub bench e2e`: namespace, schema, tenancy, processes, clean-up.

`staged_hub()` makes a namespace `bench_<hex>` (the caller's), applies the
migrations to its schema, writes a tenancy file (one sender whose key only
the bench knows, one generic_json receiver: the fake partner) and starts the
hub as separate processes, `python -m hub run` (or, split, `hub ingress`,
`hub router` and `hub deliver`, so that each hop's CPU can be read apart),
with that namespace, tenancy and a free ingress port in their environment
and the rest of the environment passed on. It is ready when /readyz answers
200 and the inbox and the partner's queue have their consumers.

`RunningHub.stop()` sends SIGTERM (ingress first) and returns the exit
codes, 0 being a clean drain. On exit, whatever happened, the processes are
stopped, the schema is dropped and every queue and exchange of the
namespace's topology is deleted; the hub's log is kept only in an error.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
from aio_pika.abc import AbstractConnection

from hub.bench import eventloop
from hub.bench.documents import Caller
from hub.broker.connection import CONNECT_ERRORS, Nodes
from hub.broker.topology import Topology
from hub.errors import HubError
from hub.settings import Address, Settings
from hub.store.migrate import drop, migrate
from hub.tenancy import Tenancy, load
from hub.wiring import topology

SENDER = "bench-sender"
RECEIVER = "bench-partner"
TOKEN_ENV = "HUB_BENCH_PARTNER_TOKEN"
SENDER_IDS = ("BENCH-CLIENT", "BENCH-CLUB")
RECEIVER_IDS = ("P-CLIENT", "P-CLUB")

_READY_WITHIN = 60.0
_LOG_TAIL = 2000

# The component a process runs -> its `hub` command.
ONE = {"hub": "run"}
SPLIT = {"ingress": "ingress", "router": "router", "delivery": "deliver"}


def namespace() -> str:
    return f"bench_{uuid.uuid4().hex[:10]}"


def tenancy_toml(caller_key: str, identifier: str, partner_url: str, concurrency: int) -> str:
    """The bench's tenancy: the sender, the fake partner as receiver, one club."""
    sha = hashlib.sha256(caller_key.encode()).hexdigest()
    unused = hashlib.sha256(secrets.token_bytes(32)).hexdigest()  # the partner never sends
    return f"""
[[provider]]
name = "{SENDER}"
identifier = "{identifier}"
key_sha256 = "{sha}"

[[provider]]
name = "{RECEIVER}"
identifier = "{RECEIVER}-identifier"
key_sha256 = "{unused}"
adapter = "generic_json"
url = "{partner_url}"
capabilities = ["user.save"]
settings = {{ key_env = "{TOKEN_ENV}" }}
concurrency = {concurrency}

[[client]]
name = "bench"
  [[client.club]]
  name = "club"
  ids.{SENDER} = {{ client = "{SENDER_IDS[0]}", club = "{SENDER_IDS[1]}" }}
  ids.{RECEIVER} = {{ client = "{RECEIVER_IDS[0]}", club = "{RECEIVER_IDS[1]}" }}
  [[client.subscription]]
  provider = "{RECEIVER}"
  receives = ["PROSPECT", "MEMBER"]
  with = ["trial"]
"""


@dataclass(frozen=True, slots=True)
class Staging:
    """How to stage the hub."""

    namespace: str
    partner_url: str
    token: str
    concurrency: int
    split: bool
    log_level: str
    per_role: int = 1  # split: processes of each role (ingress ones share the port)


class RunningHub:
    """The hub's processes, by component, and what it takes to talk to them."""

    def __init__(
        self,
        settings: Settings,
        caller: Caller,
        processes: dict[str, subprocess.Popen[bytes]],
        log: Path,
    ) -> None:
        self.settings = settings
        self.caller = caller
        self.processes = processes
        self.log = log
        address = settings.ingress_addr
        self.base = f"http://{address.host}:{address.port}"
        self.codes: dict[str, int | None] = {}

    @property
    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.processes.items()}

    @property
    def roles(self) -> dict[str, list[int]]:
        """The pids of each role's processes ("router 2" is a router)."""
        roles: dict[str, list[int]] = {}
        for name, process in self.processes.items():
            roles.setdefault(name.split()[0], []).append(process.pid)
        return roles

    def stop(self) -> dict[str, int | None]:
        """SIGTERM each process, ingress first, and wait: the exit codes (None: killed)."""
        for name, process in self.processes.items():
            if name in self.codes:
                continue
            with suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                self.codes[name] = process.wait(self.settings.shutdown_grace + 15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                self.codes[name] = None
        return self.codes

    def tail(self) -> str:
        """The end of the hub's log, for an error message."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return text[-_LOG_TAIL:]


@contextmanager
def staged_hub(settings: Settings, staging: Staging) -> Iterator[RunningHub]:
    """A migrated namespace and the hub's processes, ready; all removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    caller = Caller("bench-" + secrets.token_hex(16), str(uuid.uuid4()), *SENDER_IDS)
    tenancy_file = folder / "tenancy.toml"
    tenancy_file.write_text(
        tenancy_toml(caller.key, caller.identifier, staging.partner_url, staging.concurrency)
    )
    ours = replace(
        settings,
        namespace=staging.namespace,
        tenancy_file=tenancy_file,
        ingress_addr=Address("127.0.0.1", free_port()),
    )
    tenancy = load(tenancy_file, {TOKEN_ENV: staging.token})
    shape = topology(ours, tenancy)
    hub: RunningHub | None = None
    try:
        eventloop.run(migrate(ours.database_url, ours.namespace))
        hub = _start(ours, caller, staging, folder / "hub.log")
        eventloop.run(_ready(hub, shape, tenancy))
        yield hub
    finally:
        if hub is not None:
            hub.stop()
        eventloop.run(_clean(ours, shape))
        shutil.rmtree(folder, ignore_errors=True)


def hub_env(settings: Settings, token: str, base: Mapping[str, str]) -> dict[str, str]:
    """The hub's environment: `base`, with the bench's namespace, tenancy and services."""
    return {
        **base,
        "HUB_NAMESPACE": settings.namespace,
        "HUB_TENANCY_FILE": str(settings.tenancy_file),
        "HUB_INGRESS_ADDR": str(settings.ingress_addr),
        "HUB_OPS_ADDR": "127.0.0.1:0",  # `hub run` serves the ops port too: any free one
        "HUB_AMQP_URL": ",".join(settings.amqp_urls),
        "HUB_DATABASE_URL": settings.database_url,
        TOKEN_ENV: token,
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(settings: Settings, caller: Caller, staging: Staging, log: Path) -> RunningHub:
    env = hub_env(settings, staging.token, os.environ)
    roles = SPLIT if staging.split else ONE
    each = staging.per_role if staging.split else 1
    commands = {
        (role if each == 1 else f"{role} {n}"): command
        for role, command in roles.items()
        for n in range(1, each + 1)
    }
    hub = RunningHub(settings, caller, {}, log)
    with log.open("ab") as sink:
        try:
            for name, command in commands.items():
                hub.processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "hub", "--log-level", staging.log_level, command],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
        except OSError:
            hub.stop()  # those already started
            raise
    return hub


async def _ready(hub: RunningHub, shape: Topology, tenancy: Tenancy) -> None:
    """Wait for /readyz and for the consumers of the inbox and the partner's queue."""
    queues = [shape.inbox.name, *(shape.deliver(p.name).name for p in tenancy.receivers())]
    deadline = time.monotonic() + _READY_WITHIN
    connection = await Nodes(hub.settings.amqp_urls).connect("hub-bench-ready")
    try:
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                ended = {n: p.returncode for n, p in hub.processes.items() if p.poll() is not None}
                if ended:
                    raise HubError(f"the hub ended at start {ended}; its log:\n{hub.tail()}")
                if await _answers(http, hub.base + "/readyz") and all(
                    [await _consumers(connection, name) for name in queues]
                ):
                    return
                await asyncio.sleep(0.2)
    finally:
        await connection.close()
    raise HubError(f"the hub was not ready within {_READY_WITHIN:g} s; its log:\n{hub.tail()}")


async def _answers(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as answer:
            return answer.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def _consumers(connection: AbstractConnection, name: str) -> int:
    """How many consumers the queue has (0 if it is not declared yet)."""
    channel = await connection.channel()
    try:
        queue = await channel.declare_queue(name, passive=True)
        return int(queue.declaration_result.consumer_count or 0)
    except CONNECT_ERRORS:
        return 0
    finally:
        if not channel.is_closed:
            with suppress(*CONNECT_ERRORS):
                await channel.close()


async def _clean(settings: Settings, shape: Topology) -> None:
    """Drop the schema; delete the namespace's queues and exchanges. Say what is left."""
    left: list[str] = []
    try:
        await drop(settings.database_url, settings.namespace)
    except Exception as exc:  # reported, so that the broker is cleaned all the same
        left.append(f"schema {settings.namespace} ({exc!r})")
    try:
        connection = await Nodes(settings.amqp_urls).connect("hub-bench-clean")
        async with connection:
            channel = await connection.channel()
            for queue in shape.queues():
                await channel.queue_delete(queue.name)
            for exchange in shape.exchanges():
                await channel.exchange_delete(exchange.name)
    except (HubError, *CONNECT_ERRORS) as exc:
        left.append(f"queues and exchanges {settings.namespace}.* ({exc!r})")
    if left:
        print("hub bench: could not remove, delete by hand: " + "; ".join(left), file=sys.stderr)
