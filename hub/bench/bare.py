"""The bare-handler baseline: an aiohttp server that answers without doing anything.

Its handler reads the body and answers 200 `<response><uuid>…</uuid></response>`
without parsing, validating or publishing: the ceiling of aiohttp's HTTP path
on this machine. It runs in a process of its own (on uvloop when installed),
so that it never shares an event loop or a core's time slices with the load
generator. It listens on a free port of 127.0.0.1 only, and never logs access.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection

from aiohttp import web

from hub.bench import eventloop
from hub.errors import HubError

PATH = "/connector/api/2011-11/user"
_START_WITHIN = 30.0
_STOP_WITHIN = 5.0


@contextmanager
def bare_server() -> Iterator[str]:
    """Start the bare server in its own process; yield its URL; stop it on exit."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    server = context.Process(target=serve, args=(sender,), name="hub-bench-bare", daemon=True)
    server.start()
    sender.close()
    try:
        if not receiver.poll(_START_WITHIN):
            raise HubError(f"the bare server did not start within {_START_WITHIN:g} s")
        port = receiver.recv()
        yield f"http://127.0.0.1:{port}{PATH}"
    finally:
        server.terminate()  # SIGTERM: the server closes its site and exits
        server.join(_STOP_WITHIN)
        if server.is_alive():
            server.kill()
            server.join()
        receiver.close()


def serve(ready: Connection) -> None:
    """The server process: listen, send the port through `ready`, serve until SIGTERM."""
    eventloop.run(_serve(ready))


async def _serve(ready: Connection) -> None:
    app = web.Application()
    app.router.add_post("/{tail:.*}", _answer)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await web.SockSite(runner, listener, backlog=1024).start()
        ready.send(listener.getsockname()[1])
        ready.close()
        await stop.wait()
    finally:
        await runner.cleanup()


async def _answer(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(
        body=f"<response><uuid>{uuid.uuid4()}</uuid></response>".encode(),
        content_type="application/xml",
    )
