"""The fakes run as processes for the demo: seeded from the command line, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aiohttp
import pytest

from adapters.base import ClubRef
from tests.adapters.conftest import IDENTIFIER, TOKEN, json_adapter, xml_adapter


async def _run(module: str, *args: str) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        "--port",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "FAKE_PARTNER_KEY": TOKEN},
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
    assert " listening on http://127.0.0.1:" in line, line
    return process, line.rsplit(" ", 1)[1].strip()


async def _stop(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0


async def test_the_generic_json_fake_as_a_process(session: aiohttp.ClientSession) -> None:
    process, url = await _run(
        "adapters.fakes.generic_json",
        "--token-env",
        "FAKE_PARTNER_KEY",
        "--staff",
        "K-1:sam@example.com",
        "--lead-source",
        "K-1:Walk-in: the door",
    )
    try:
        adapter = json_adapter(url, session)
        club = ClubRef("C-1", "K-1")
        [staff] = await adapter.list_staff(club)
        assert staff.email == "sam@example.com"
        [source] = await adapter.list_lead_sources(club)
        assert source.name == "Walk-in: the door"
    finally:
        await _stop(process)


@pytest.mark.parametrize(
    ("module", "args"),
    [
        (
            "adapters.fakes.mindbody",
            [
                "--key-env",
                "FAKE_PARTNER_KEY",
                "--username",
                "hub",
                "--password-env",
                "FAKE_PARTNER_KEY",
                "--staff",
                "S-1:sam@example.com",
                "--referral-type",
                "S-1:Walk-in",
            ],
        ),
        (
            "adapters.fakes.abc_datatrak",
            ["--app-id", "hub", "--key-env", "FAKE_PARTNER_KEY", "--staff", "0417:sam@example.com"],
        ),
        (
            "adapters.fakes.clubready",
            [
                "--key-env",
                "FAKE_PARTNER_KEY",
                "--staff",
                "77:sam@example.com",
                "--referral-type",
                "77:Walk-in",
            ],
        ),
    ],
)
async def test_the_other_fakes_start_seeded_and_stop(module: str, args: list[str]) -> None:
    process, url = await _run(module, *args)
    assert url.startswith("http://127.0.0.1:")
    await _stop(process)


async def test_the_connector_fake_as_a_process(session: aiohttp.ClientSession) -> None:
    process, url = await _run(
        "adapters.fakes.connector_xml",
        "--key-env",
        "FAKE_PARTNER_KEY",
        "--identifier",
        IDENTIFIER,
        "--staff",
        "C-1:K-1:sam@example.com",
        "--lead-source",
        "C-1:K-1:Facebook",
    )
    try:
        assert url.endswith("/connector/api/2011-11")
        adapter = xml_adapter(url, session)
        club = ClubRef("C-1", "K-1")
        assert [s.email for s in await adapter.list_staff(club)] == ["sam@example.com"]
        assert [s.name for s in await adapter.list_lead_sources(club)] == ["Facebook"]
    finally:
        await _stop(process)


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("adapters.fakes.generic_json", ["--token-env", "NO_SUCH_VARIABLE_SET"]),
        (
            "adapters.fakes.connector_xml",
            ["--key-env", "NO_SUCH_VARIABLE_SET", "--identifier", IDENTIFIER],
        ),
        (
            "adapters.fakes.mindbody",
            ["--key-env", "NO_SUCH_VARIABLE_SET", "--username", "u", "--password-env", "PATH"],
        ),
        ("adapters.fakes.abc_datatrak", ["--app-id", "a", "--key-env", "NO_SUCH_VARIABLE_SET"]),
        ("adapters.fakes.clubready", ["--key-env", "NO_SUCH_VARIABLE_SET"]),
    ],
)
async def test_a_missing_key_stops_the_fake_at_once(module: str, args: list[str]) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 2
    assert b"NO_SUCH_VARIABLE_SET is not set" in err
