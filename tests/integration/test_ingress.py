"""The ingress as partners meet it: real HTTP, real broker, real store."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace

import aiohttp
import pytest
import structlog
from lxml import etree

from hub.connector.documents import Kind
from hub.ingress.app import BASE, IngressService
from hub.records import hub_uuid
from hub.settings import Settings
from hub.store import records
from hub.tenancy import Tenancy
from tests.conftest import Hub, eventually
from tests.fixtures_tenancy import (
    CLUBOS_ID,
    CLUBOS_KEY,
    INTOUCH_ID,
    INTOUCH_KEY,
    lead_source_xml,
    user_xml,
)

XML = {"Content-Type": "application/xml"}
AUTH = {"Authorization": f"Bearer {INTOUCH_KEY}", **XML}


async def post(
    http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, etree._Element]:
    async with http.post(url, data=body, headers=AUTH if headers is None else headers) as r:
        return r.status, etree.fromstring(await r.read())


async def get(
    http: aiohttp.ClientSession, url: str, key: str = INTOUCH_KEY, **query: str
) -> tuple[int, etree._Element]:
    headers = {"Authorization": f"Bearer {key}"}
    async with http.get(url, params=query, headers=headers) as r:
        return r.status, etree.fromstring(await r.read())


def error_of(root: etree._Element) -> tuple[str, str]:
    assert root.tag == "error"
    uuid.UUID(root.findtext("errorUUID"))
    return root.findtext("reason") or "", root.findtext("message") or ""


async def stored(hub: Hub, record_uuid: uuid.UUID, version: int = 1) -> records.StoredRecord:
    async def probe() -> records.StoredRecord | None:
        found = await records.get(hub.router.pool, record_uuid)  # type: ignore[arg-type]
        return found if found and found.version >= version else None

    result: records.StoredRecord = await eventually(probe)
    return result


async def test_a_saved_user_is_stored_and_read_back(hub: Hub, http: aiohttp.ClientSession) -> None:
    status, answer = await post(http, f"{hub.url}/user", user_xml("R-1"))
    assert status == 200
    expected = hub_uuid("intouch", "456", "123", Kind.USER, "R-1")
    assert answer.findtext("uuid") == str(expected)
    await stored(hub, expected)

    status, user = await get(http, f"{hub.url}/user", provider=INTOUCH_ID, recordID="R-1")
    assert status == 200
    assert user.findtext("providerInfo/recordID") == "R-1"
    assert user.findtext("userInfo/firstname") == "Ada"
    assert user.findtext("leadInfo/ownerID") == "S-17"
    assert user.findtext("userInfo/createdBy") == "intouch"
    assert user.findtext("userInfo/modifiedDate", "").endswith("Z")


async def test_staff_one_and_list(hub: Hub, http: aiohttp.ClientSession) -> None:
    for n in (1, 2):
        body = user_xml(f"S-{n}", user_type="STAFF").replace(
            b"<leadInfo><leadSource>Walk-in</leadSource><ownerID>S-17</ownerID></leadInfo>", b""
        )
        status, answer = await post(http, f"{hub.url}/staff", body)
        assert status == 200, etree.tostring(answer)
        await stored(hub, uuid.UUID(answer.findtext("uuid")))

    status, one = await get(http, f"{hub.url}/staff", provider=INTOUCH_ID, recordID="S-2")
    assert (status, one.findtext("userInfo/userType")) == (200, "STAFF")
    status, listed = await get(
        http, f"{hub.url}/staff", provider=INTOUCH_ID, client_id="456", club_id="123"
    )
    assert status == 200
    assert listed.tag == "staffList"
    assert [u.findtext("providerInfo/recordID") for u in listed] == ["S-1", "S-2"]


async def test_lead_source_one_and_list(hub: Hub, http: aiohttp.ClientSession) -> None:
    status, answer = await post(http, f"{hub.url}/leadsource", lead_source_xml())
    assert status == 200
    await stored(hub, uuid.UUID(answer.findtext("uuid")))
    status, one = await get(
        http, f"{hub.url}/leadsource", provider=INTOUCH_ID, identifier="FACEBOOK"
    )
    assert (status, one.findtext("leadInfo/name")) == (200, "Facebook")
    status, listed = await get(
        http, f"{hub.url}/leadsource", provider=INTOUCH_ID, client_id="456", club_id="123"
    )
    assert listed.tag == "leadSources"
    assert [s.findtext("leadInfo/name") for s in listed] == ["Facebook"]


async def test_resaving_the_same_record_keeps_uuid_and_version(
    hub: Hub, http: aiohttp.ClientSession
) -> None:
    _, first = await post(http, f"{hub.url}/user", user_xml("R-2"))
    record_uuid = uuid.UUID(first.findtext("uuid"))
    await stored(hub, record_uuid)
    _, again = await post(http, f"{hub.url}/user", user_xml("R-2"))
    assert again.findtext("uuid") == str(record_uuid)
    _, changed = await post(http, f"{hub.url}/user", user_xml("R-2", firstname="Augusta"))
    assert changed.findtext("uuid") == str(record_uuid)

    record = await stored(hub, record_uuid, version=2)
    assert record.body["userInfo"]["firstname"] == "Augusta"
    assert record.version == 2  # the identical re-save did not count


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "AUTHENTICATION"),
        ({"Authorization": "Bearer wrong-key"}, "AUTHENTICATION"),
        ({"Authorization": f"Basic {INTOUCH_KEY}"}, "AUTHENTICATION"),
    ],
)
async def test_a_save_without_a_good_key_is_refused(
    hub: Hub, http: aiohttp.ClientSession, headers: dict[str, str], reason: str
) -> None:
    status, answer = await post(http, f"{hub.url}/user", user_xml(), {**XML, **headers})
    assert (status, error_of(answer)[0]) == (401, reason)


async def test_the_identifier_must_be_the_keys_provider(
    hub: Hub, http: aiohttp.ClientSession
) -> None:
    body = user_xml(identifier=CLUBOS_ID)
    status, answer = await post(http, f"{hub.url}/user", body)
    reason, message = error_of(answer)
    assert (status, reason) == (403, "FORBIDDEN")
    assert "identifier" in message


async def test_a_provider_sends_only_for_its_clubs(hub: Hub, http: aiohttp.ClientSession) -> None:
    status, answer = await post(http, f"{hub.url}/user", user_xml(club_id="999"))
    reason, message = error_of(answer)
    assert (status, reason) == (403, "FORBIDDEN")
    assert "999" in message


async def test_get_is_scoped_to_the_caller(hub: Hub, http: aiohttp.ClientSession) -> None:
    _, answer = await post(http, f"{hub.url}/user", user_xml("R-3"))
    await stored(hub, uuid.UUID(answer.findtext("uuid")))
    status, refused = await get(
        http, f"{hub.url}/user", key=CLUBOS_KEY, provider=INTOUCH_ID, recordID="R-3"
    )
    assert (status, error_of(refused)[0]) == (403, "FORBIDDEN")
    status, missing = await get(
        http, f"{hub.url}/user", key=CLUBOS_KEY, provider=CLUBOS_ID, recordID="R-3"
    )
    assert (status, error_of(missing)[0]) == (404, "NOT_FOUND")


async def test_every_bad_field_is_named_in_one_answer(
    hub: Hub, http: aiohttp.ClientSession
) -> None:
    body = user_xml(
        extra="<gender>X</gender><country>XX</country><birthdate>1990-02-30</birthdate>"
    )
    body = body.replace(b"<userStatus>ACTIVE</userStatus>", b"")
    status, answer = await post(http, f"{hub.url}/user", body)
    reason, message = error_of(answer)
    assert (status, reason) == (400, "VALIDATION")
    for field in ("gender", "country", "birthdate", "userStatus"):
        assert f"userInfo/{field}" in message


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><user>&lol2;</user>',
            "DTD",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE user [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            b"<user><providerInfo><identifier>&xxe;</identifier></providerInfo></user>",
            "DTD",
        ),
        (b"<user><providerInfo></user>", "not well-formed"),
        (b"<user>&undeclared;</user>", "not well-formed"),
        (b"", "empty"),
    ],
    ids=["entity-bomb", "external-entity", "mismatched-tags", "undeclared-entity", "empty"],
)
async def test_dangerous_or_broken_xml_is_refused(
    hub: Hub, http: aiohttp.ClientSession, body: bytes, needle: str
) -> None:
    status, answer = await post(http, f"{hub.url}/user", body)
    reason, message = error_of(answer)
    assert (status, reason) == (400, "VALIDATION")
    assert needle in message


async def test_a_body_over_the_limit_is_refused_before_reading(
    hub: Hub, http: aiohttp.ClientSession
) -> None:
    big = user_xml(extra=f"<company>{'x' * 70_000}</company>")
    status, answer = await post(http, f"{hub.url}/user", big)
    assert (status, error_of(answer)[0]) == (413, "TOO_LARGE")

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"<!-- " + b"y" * 8192 + b" -->"

    async with http.post(f"{hub.url}/user", data=chunks(), headers=AUTH) as r:
        assert r.status == 413
        assert error_of(etree.fromstring(await r.read()))[0] == "TOO_LARGE"


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "application/xml; charset=latin-1"]
)
async def test_a_body_that_is_not_xml_is_refused(
    hub: Hub, http: aiohttp.ClientSession, content_type: str
) -> None:
    headers = {**AUTH, "Content-Type": content_type}
    status, answer = await post(http, f"{hub.url}/user", user_xml(), headers)
    assert (status, error_of(answer)[0]) == (415, "UNSUPPORTED_MEDIA")


async def test_text_xml_is_accepted(hub: Hub, http: aiohttp.ClientSession) -> None:
    headers = {**AUTH, "Content-Type": "text/xml; charset=utf-8"}
    status, _ = await post(http, f"{hub.url}/user", user_xml(), headers)
    assert status == 200


async def test_unknown_paths_and_methods_answer_error_xml(
    hub: Hub, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{hub.url}/members", headers=AUTH) as r:
        assert (r.status, error_of(etree.fromstring(await r.read()))[0]) == (404, "NOT_FOUND")
    async with http.delete(f"{hub.url}/user", headers=AUTH) as r:
        assert r.status == 405
        assert "GET" in r.headers["Allow"]
        assert error_of(etree.fromstring(await r.read()))[0] == "VALIDATION"


async def test_health_and_readiness(hub: Hub, http: aiohttp.ClientSession) -> None:
    root = hub.url.split("/connector")[0]
    async with http.get(f"{root}/healthz") as r:
        assert r.status == 200
    async with http.get(f"{root}/readyz") as r:
        assert (r.status, await r.json()) == (200, {"broker": True, "database": True})


async def test_concurrent_saves_are_all_confirmed_and_stored(
    hub: Hub, http: aiohttp.ClientSession
) -> None:
    # Saves that arrive together share inbox messages (group commit); each is stored.
    answers = await asyncio.gather(
        *(post(http, f"{hub.url}/user", user_xml(f"C-{n}")) for n in range(150))
    )
    assert [status for status, _ in answers] == [200] * 150
    pool = hub.router.pool
    assert pool is not None

    async def all_stored() -> bool:
        return bool(await pool.fetchval("SELECT count(*) FROM records") == 150)

    await eventually(all_stored)
    messages = await pool.fetchval("SELECT count(DISTINCT message_id) FROM receipts")
    assert messages == 150  # one receipt per save, whatever the batching


async def test_the_error_uuid_is_in_the_log_line(hub: Hub, http: aiohttp.ClientSession) -> None:
    with structlog.testing.capture_logs() as logs:
        status, answer = await post(http, f"{hub.url}/user", user_xml(club_id="999"))
    lines = [line for line in logs if line["event"] == "request"]
    assert status == 403
    assert len(lines) == 1
    assert lines[0]["error_uuid"] == answer.findtext("errorUUID")
    assert lines[0]["provider"] == "intouch"
    assert lines[0]["status"] == 403
    assert "latency_ms" in lines[0]


StartIngress = Callable[..., AbstractAsyncContextManager[str]]


@pytest.fixture
def ingress_alone(settings: Settings, tenancy: Tenancy) -> StartIngress:
    """An ingress with changed settings and no router: nothing empties the inbox."""

    @asynccontextmanager
    async def start(**changes: object) -> AsyncIterator[str]:
        service = IngressService(replace(settings, **changes), tenancy)  # type: ignore[arg-type]
        await service.start()
        try:
            yield f"http://127.0.0.1:{service.port}{BASE}"
        finally:
            await service.stop()

    return start


def unavailable(status: int, answer: etree._Element) -> bool:
    return status == 503 and error_of(answer)[0] == "UNAVAILABLE"


async def test_past_max_waiting_a_save_is_answered_503_at_once(
    ingress_alone: StartIngress, http: aiohttp.ClientSession
) -> None:
    """Two saves wait (lingering, as behind a slow broker); the third is refused at once."""
    async with ingress_alone(ingress_max_waiting=2, ingress_linger=0.9) as url:

        async def timed(n: int) -> tuple[int, etree._Element, float, str | None]:
            started = time.monotonic()
            async with http.post(f"{url}/user", data=user_xml(f"W-{n}"), headers=AUTH) as r:
                answer = etree.fromstring(await r.read())
                return r.status, answer, time.monotonic() - started, r.headers.get("Retry-After")

        first = [asyncio.create_task(timed(n)) for n in range(2)]
        await asyncio.sleep(0.2)  # both wait in the linger now
        status, answer, took, retry_after = await timed(2)
        assert unavailable(status, answer), etree.tostring(answer)
        assert "saves wait" in error_of(answer)[1]
        assert took < 0.5
        assert retry_after is not None
        assert 1 <= int(retry_after) <= 3  # within the publish timeout (3 s), spread
        assert [s for s, *_ in await asyncio.gather(*first)] == [200, 200]


async def test_a_full_inbox_is_answered_503_quickly(
    ingress_alone: StartIngress, http: aiohttp.ClientSession
) -> None:
    """The inbox at its maximum length nacks (reject-publish): a 503 well within the timeout.

    A quorum queue checks its length after taking a message, so it takes one more than
    the bound (the one that crosses it) before it refuses."""
    async with ingress_alone(queue_max_length=3, ingress_linger=0.0) as url:
        for n in range(4):  # one message each (no linger)
            status, _ = await post(http, f"{url}/user", user_xml(f"F-{n}"))
            assert status == 200
        started = time.monotonic()
        async with http.post(f"{url}/user", data=user_xml("F-4"), headers=AUTH) as r:
            status, answer = r.status, etree.fromstring(await r.read())
            assert r.headers.get("Retry-After") == "1"
        took = time.monotonic() - started
        print(f"a full inbox: 503 in {took * 1000:.0f} ms (publish timeout 3 s)")
        assert unavailable(status, answer), etree.tostring(answer)
        assert "refused" in error_of(answer)[1]
        assert took < 1.5
