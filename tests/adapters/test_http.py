"""adapters.http: Retry-After, status classes, and what a broken connection becomes."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator

import aiohttp
import pytest
import yarl

from adapters import http
from adapters.base import AdapterConfigError, PermanentPartnerError, TransientPartnerError

NOW = datetime.datetime(2015, 10, 21, 7, 28, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 3 ", 3.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Wed, 21 Oct 2015 07:29:30 GMT", 90.0),
        ("Wednesday, 21-Oct-15 07:29:00 GMT", 60.0),  # RFC 850, still allowed to be sent
        ("Wed Oct 21 07:28:10 2015", 10.0),  # asctime
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),  # already past: now
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("nan", None),
        ("inf", None),
        ("Wed, 41 Oct 2015 07:28:00 GMT", None),
    ],
)
def test_retry_after(header: str | None, seconds: float | None) -> None:
    assert http.parse_retry_after(header, now=NOW) == seconds


def test_retry_after_as_a_date_is_counted_from_now() -> None:
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30)
    header = soon.strftime("%a, %d %b %Y %H:%M:%S GMT")
    seconds = http.parse_retry_after(header)
    assert seconds is not None
    assert 28 <= seconds <= 30


@pytest.mark.parametrize("status", [408, 425, 429, 500, 501, 502, 503, 504, 599])
def test_transient_statuses(status: int) -> None:
    error = http.error_for(status, "crm: PUT /x", b"busy", "2")
    assert isinstance(error, TransientPartnerError)
    assert (error.status, error.answer, error.retry_after) == (status, "busy", 2.0)
    assert error.message == f"crm: PUT /x answered {status}"


@pytest.mark.parametrize("status", [300, 301, 304, 400, 401, 403, 404, 405, 409, 410, 422, 600])
def test_permanent_statuses(status: int) -> None:
    error = http.error_for(status, "crm: PUT /x", b'{"error": "no"}', "2")
    assert type(error) is PermanentPartnerError
    assert (error.status, error.answer) == (status, '{"error": "no"}')


def test_an_explained_answer_says_why_and_keeps_the_body() -> None:
    error = http.error_for(400, "crm: POST /user", b"<error/>", explain=lambda body: "VALIDATION")
    assert error.message == "crm: POST /user answered 400: VALIDATION"
    assert error.answer == "<error/>"


def test_an_answer_that_is_not_utf8_is_kept_readable() -> None:
    assert http.error_for(500, "crm", b"caf\xe9").answer == "caf\ufffd"


@pytest.mark.parametrize(
    ("settings", "seconds"), [({}, 10.0), ({"timeout": 2}, 2.0), ({"timeout": 0.5}, 0.5)]
)
def test_timeout_of(settings: dict[str, object], seconds: float) -> None:
    assert http.timeout_of("crm", settings) == seconds


async def _serve(handle: object) -> AsyncIterator[yarl.URL]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)  # type: ignore[arg-type]
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield yarl.URL(f"http://127.0.0.1:{port}/x")


@pytest.fixture
async def hangs_up() -> AsyncIterator[yarl.URL]:
    """A server that reads the request and closes the connection without an answer."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()
        await writer.wait_closed()

    async for url in _serve(handle):
        yield url


@pytest.fixture
async def cuts_the_body() -> AsyncIterator[yarl.URL]:
    """A server that promises 100 bytes, sends 5 and closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async for url in _serve(handle):
        yield url


async def test_a_connection_closed_without_an_answer_is_transient(hangs_up: yarl.URL) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(TransientPartnerError, match="ServerDisconnectedError") as caught:
            await http.request(session, "GET", hangs_up, what="crm: GET /x", headers={})
    assert caught.value.status is None


async def test_a_body_cut_short_is_transient(cuts_the_body: yarl.URL) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(TransientPartnerError, match="crm: GET /x"):
            await http.request(session, "GET", cuts_the_body, what="crm: GET /x", headers={})


async def test_an_unusable_url_is_permanent() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(PermanentPartnerError):
            await http.request(
                session, "GET", yarl.URL("ftp://partner.invalid/x"), what="crm", headers={}
            )


def test_a_bad_timeout_names_the_provider() -> None:
    with pytest.raises(AdapterConfigError, match=r"provider 'crm': settings\.timeout"):
        http.timeout_of("crm", {"timeout": "ten"})


async def test_an_answer_too_large_is_permanent(
    monkeypatch: pytest.MonkeyPatch, partner_too_chatty: yarl.URL
) -> None:
    monkeypatch.setattr(http, "MAX_ANSWER_BYTES", 10)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(PermanentPartnerError, match="over 10 bytes"):
            await http.request(session, "GET", partner_too_chatty, what="crm", headers={})


@pytest.fixture
async def partner_too_chatty() -> AsyncIterator[yarl.URL]:
    """A server that answers 200 with 11 bytes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async for url in _serve(handle):
        yield url


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://partner.example/api/", "http://partner.example/api"),
        ("https://partner.example", "https://partner.example"),
        ("http://127.0.0.1:9102/api", "http://127.0.0.1:9102/api"),
    ],
)
def test_base_url(url: str, base: str) -> None:
    assert http.base_url("crm", url) == base


@pytest.mark.parametrize(
    "url", ["ftp://partner.example", "partner.example/api", "http://", "http://h/api?k=1", ""]
)
def test_a_base_url_that_cannot_work_is_refused(url: str) -> None:
    with pytest.raises(AdapterConfigError, match="provider 'crm': url"):
        http.base_url("crm", url)
