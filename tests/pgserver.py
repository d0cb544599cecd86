"""A PostgreSQL server of a test's own, that the test may stop and start.

The tests of database outages stop PostgreSQL for tens of seconds; the
machine's server serves every other test (and other people), so they stop
this one instead: `initdb` in a fresh folder, its own port and socket,
fsync off, run as the `postgres` user with the machine's PostgreSQL binaries.
Every command has a timeout, and the server is stopped and its folder
removed at the end whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest


def _bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePostgres:
    """One PostgreSQL server in a temporary folder, on a free port of 127.0.0.1."""

    def __init__(self, bindir: Path, folder: Path, user: str) -> None:
        self._bin = bindir
        self._folder = folder
        self._data = folder / "data"
        self._user = user
        self.port = _free_port()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    async def _run(self, *args: str, within: float = 60) -> None:
        command = [str(self._bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", self._user, "--", *command]
        process = await asyncio.create_subprocess_exec(
            *command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            async with asyncio.timeout(within):
                out, _ = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {process.returncode}: {out.decode()}")

    async def create(self) -> None:
        await self._run("initdb", "-D", str(self._data), "-A", "trust", "-U", "postgres", "-N")

    async def start(self) -> None:
        options = (
            f"-p {self.port} -k {self._folder} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(self._folder / "server.log")
        await self._run("pg_ctl", "-D", str(self._data), "-o", options, "-l", log, "-w", "start")

    async def stop(self) -> None:
        """Stop at once (`-m fast`: sessions are cut, as when a server goes down)."""
        await self._run("pg_ctl", "-D", str(self._data), "-m", "fast", "-w", "stop")

    async def running(self) -> bool:
        try:
            await self._run("pg_ctl", "-D", str(self._data), "status", within=10)
        except RuntimeError:
            return False
        return True


@contextlib.asynccontextmanager
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    """A started private server; stopped and removed at the end (skip if none can be made)."""
    bindir = _bindir()
    if bindir is None or shutil.which("runuser") is None:
        pytest.skip("no PostgreSQL server binaries to run a private server with")
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user to run a private server as")
    folder = Path(tempfile.mkdtemp(prefix="hub-pg-", dir="/tmp"))
    os.chown(folder, owner.pw_uid, owner.pw_gid)
    server = PrivatePostgres(bindir, folder, "postgres")
    try:
        await server.create()
        await server.start()
        yield server
    finally:
        try:
            if await server.running():
                await server.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
