"""Every invalid fixture, posted to its endpoint, is refused with 400 VALIDATION.

The fixtures are the ones the XSD agreement test uses; here they travel the
real path (HTTP, authentication, the error XML), one rule at a time.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from lxml import etree

from tests.conftest import Hub
from tests.fixtures_tenancy import INTOUCH_KEY

FIXTURES = Path(__file__).parents[1] / "fixtures" / "xml"
AUTH = {"Authorization": f"Bearer {INTOUCH_KEY}", "Content-Type": "application/xml"}


def fixtures(verdict: str) -> list[Path]:
    return sorted(FIXTURES.glob(f"*/{verdict}/*.xml"))


def read(path: Path) -> bytes:
    return path.read_bytes()


def test_there_are_fixtures_of_both_verdicts() -> None:
    assert len(fixtures("invalid")) >= 30
    assert len(fixtures("valid")) >= 10


@pytest.mark.parametrize("path", fixtures("invalid"), ids=lambda p: f"{p.parts[-3]}/{p.stem}")
async def test_an_invalid_document_is_refused(
    hub: Hub, http: aiohttp.ClientSession, path: Path
) -> None:
    endpoint, body = path.parts[-3], read(path)
    async with http.post(f"{hub.url}/{endpoint}", data=body, headers=AUTH) as r:
        answer = etree.fromstring(await r.read())
    assert r.status == 400, etree.tostring(answer)
    assert answer.findtext("reason") == "VALIDATION"
    assert answer.findtext("message")


@pytest.mark.parametrize("path", fixtures("valid"), ids=lambda p: f"{p.parts[-3]}/{p.stem}")
async def test_a_valid_document_is_accepted(
    hub: Hub, http: aiohttp.ClientSession, path: Path
) -> None:
    endpoint, body = path.parts[-3], read(path)
    async with http.post(f"{hub.url}/{endpoint}", data=body, headers=AUTH) as r:
        answer = etree.fromstring(await r.read())
    assert r.status == 200, etree.tostring(answer)
    assert answer.findtext("uuid")
