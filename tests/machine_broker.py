"""The machine's own RabbitMQ node, for the tests that stop and start it (`broker_restart`).

Those tests stop the node's application with `rabbitmqctl stop_app`: only right
when the broker they test is that node. So they skip unless HUB_TEST_AMQP_URL
is unset or names 127.0.0.1:5672 (`OWNS_BROKER`); every rabbitmqctl runs with
a time bound (killed with its process group past it); `stopped()` starts the
application again in a `finally`, trying again with a backoff; and at the end
of a session that ran such tests, `tests/conftest.py` checks that the node
answers AMQP (`answers()`).

Other engineers' tests use that node too: these tests are run by the
integrator, alone, not while developing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aio_pika
import pytest

from tests.conftest import AMQP_URL

MACHINE_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
CTL_TIMEOUT = 60.0  # seconds: start_app of a node with many queues takes a while


def is_machine_broker(url: str) -> bool:
    """Whether `url` is the machine's own node (127.0.0.1 or localhost, port 5672)."""
    parts = urlsplit(url)
    return parts.hostname in ("127.0.0.1", "localhost", "::1") and (parts.port or 5672) == 5672


OWNS_BROKER = is_machine_broker(AMQP_URL)
only_when_owned = pytest.mark.skipif(
    not OWNS_BROKER,
    reason="HUB_TEST_AMQP_URL is not the machine's node, which these tests stop and start",
)


async def rabbitmqctl(*args: str, within: float = CTL_TIMEOUT) -> None:
    """`rabbitmqctl ARGS` on the machine's node, killed (with its children) past `within` s."""
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        *args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the wrapper's children die with it
    )
    try:
        async with asyncio.timeout(within):
            _, err = await process.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        raise AssertionError(
            f"rabbitmqctl {' '.join(args)}: no answer within {within:g} s"
        ) from None
    assert process.returncode == 0, f"rabbitmqctl {' '.join(args)}: {err.decode()}"


@contextlib.asynccontextmanager
async def stopped() -> AsyncIterator[None]:
    """The machine's broker application stopped for the block, and started again after."""
    try:
        await rabbitmqctl("stop_app")
        yield
    finally:
        await start_again()


async def start_again(tries: int = 4) -> None:
    """start_app, then await_startup; tried again after a pause (1 s doubling, jittered,
    at most 10 s) when rabbitmqctl fails or hangs."""
    for attempt in range(1, tries + 1):
        try:
            await rabbitmqctl("start_app")
            await rabbitmqctl("await_startup")
            return
        except AssertionError:
            if attempt == tries:
                raise
            await asyncio.sleep(min(2 ** (attempt - 1), 10) * random.uniform(0.5, 1.0))


async def answers(url: str = MACHINE_AMQP_URL, within: float = 60.0) -> bool:
    """Whether the node takes an AMQP connection and opens a channel within `within` s
    (tried again after a pause, 0.5 s doubling up to 5 s, jittered)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pause = 0.5
    while True:
        try:
            async with asyncio.timeout(10):
                connection = await aio_pika.connect(url)
                async with connection:
                    await connection.channel()
            return True
        except (OSError, TimeoutError, aio_pika.exceptions.AMQPError):
            if loop.time() + pause > deadline:
                return False
        await asyncio.sleep(pause * random.uniform(0.5, 1.0))
        pause = min(pause * 2, 5.0)
