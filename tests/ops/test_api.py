"""The ops API over HTTP, served by a real OpsService against a running hub whose fake
partner made dead letters: tokens and rights, replay (exactly once), purge
(confirmed), trace, gaps, check, and the errors' JSON.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from hub.ops.service import OpsService
from hub.settings import Address
from tests.conftest import eventually
from tests.delivery.conftest import DeliveryHub, prospect_xml, staff_xml
from tests.ops.conftest import OPS_TOKEN, READ_TOKEN, MakeDead


@dataclass
class Answer:
    status: int
    body: Any
    headers: Any


class OpsApi:
    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self._http = http

    async def call(
        self, method: str, path: str, *, token: str | None = OPS_TOKEN, **kwargs: Any
    ) -> Answer:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers |= kwargs.pop("headers", {})
        async with self._http.request(
            method, self.url + path, headers=headers, allow_redirects=False, **kwargs
        ) as answer:
            is_json = answer.content_type == "application/json"
            body = await answer.json() if is_json else await answer.text()
            return Answer(answer.status, body, answer.headers)

    async def get(self, path: str, **kwargs: Any) -> Answer:
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> Answer:
        return await self.call("POST", path, json=body, **kwargs)


async def serve(hub: DeliveryHub, **overrides: Any) -> OpsService:
    assert hub.tenancy is not None
    settings = replace(hub.settings, ops_addr=Address("127.0.0.1", 0), **overrides)
    service = OpsService(settings, hub.tenancy)
    await service.start()
    return service


@pytest.fixture
async def api(hub: DeliveryHub) -> AsyncIterator[OpsApi]:
    service = await serve(hub)
    try:
        async with aiohttp.ClientSession() as http:
            yield OpsApi(f"http://127.0.0.1:{service.port}", http)
    finally:
        await service.stop()


async def dead_ids(hub: DeliveryHub, partner: str = "crm") -> list[int]:
    rows = await hub.pool.fetch(
        "SELECT id FROM dead_letters WHERE partner = $1 AND state = 'dead' ORDER BY id", partner
    )
    return [r["id"] for r in rows]


async def test_without_a_token_only_health_and_metrics_answer(api: OpsApi) -> None:
    missing = await api.get("/api/status", token=None)
    assert missing.status == 401
    assert "no token" in missing.body["error"]
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = await api.post("/api/dead/replay", {"all": True}, token="not-the-token")
    assert wrong.status == 401
    assert "not valid" in wrong.body["error"]
    page = await api.get("/dead?partner=crm", token=None)
    assert page.status == 303
    location = urlsplit(page.headers["Location"])
    assert (location.path, parse_qs(location.query)) == ("/login", {"next": ["/dead?partner=crm"]})
    health = await api.get("/healthz", token=None)
    assert (health.status, health.body) == (200, "ok")
    assert (await api.get("/metrics", token=None)).status == 200
    unknown = await api.get("/api/nothing-here")
    assert unknown.status == 404
    assert "error" in unknown.body


async def test_the_read_token_reads_but_may_not_replay(
    hub: DeliveryHub, api: OpsApi, make_dead: MakeDead
) -> None:
    [record] = await make_dead(["R-1"])
    status = await api.get("/api/status", token=READ_TOKEN)
    assert status.status == 200, status.body
    assert status.body["stuck"] is True
    assert [d["count"] for d in status.body["dead_letters"] if d["partner"] == "crm"] == [1]
    assert {p["partner"] for p in status.body["partners"]} == {"crm", "books"}
    listed = await api.get("/api/dead?partner=crm", token=READ_TOKEN)
    assert [(row["uuid"], row["state"]) for row in listed.body] == [(record, "dead")]
    assert (await api.get("/api/dead?partner=books", token=READ_TOKEN)).body == []
    shown = await api.get(f"/api/dead/{listed.body[0]['id']}", token=READ_TOKEN)
    assert shown.status == 200
    assert "lastName rejected" in str(shown.body["attempts"])  # the partner's answer, kept
    assert shown.body["record"]["record_id"] == "R-1"

    refused = await api.post("/api/dead/replay", {"ids": [listed.body[0]["id"]]}, token=READ_TOKEN)
    assert refused.status == 403
    assert refused.body["right"] == "replay"
    assert "replay right" in refused.body["error"]
    for path in ("/api/dead/purge", "/api/gaps/1/redeliver", "/api/mappings/refresh"):
        assert (await api.post(path, {}, token=READ_TOKEN)).status == 403, path
    assert await dead_ids(hub) == [listed.body[0]["id"]]  # still dead
    assert hub.fake("crm").creates[record] == 0


async def test_a_replay_delivers_exactly_once(
    hub: DeliveryHub, api: OpsApi, make_dead: MakeDead
) -> None:
    [record] = await make_dead(["R-1"])
    [dead_id] = await dead_ids(hub)
    # The fake failed only the next request: crm has recovered.
    ran = await api.post("/api/dead/replay", {"ids": [dead_id]}, headers={"X-Hub-Operator": "ann"})
    assert ran.status == 200, ran.body
    assert ran.body["counts"] == {"sent": 1}
    assert ran.body["outcomes"][0]["uuid"] == record

    async def delivered() -> bool:
        return hub.fake("crm").creates[record] == 1

    await eventually(delivered)
    again = await api.post("/api/dead/replay", {"ids": [dead_id]})
    assert again.status == 200
    assert again.body["counts"] == {"not dead": 1}
    assert "no longer dead: replayed by ann" in again.body["outcomes"][0]["detail"]
    await asyncio.sleep(0.5)
    assert hub.fake("crm").creates[record] == 1
    audit = await hub.pool.fetch("SELECT operator, action FROM operator_actions ORDER BY id")
    assert [a["action"] for a in audit] == ["replay", "replay"]
    assert audit[0]["operator"].startswith("ann (replay token, 127.0.0.1)")


async def test_purge_needs_confirmation_and_a_selection(
    hub: DeliveryHub, api: OpsApi, make_dead: MakeDead
) -> None:
    await make_dead(["R-1", "R-2"])
    nothing = await api.post("/api/dead/replay", {})
    assert nothing.status == 400
    assert nothing.body["parameter"] == "ids"
    assert "all: true" in nothing.body["error"]
    unconfirmed = await api.post("/api/dead/purge", {"partner": "crm"})
    assert unconfirmed.status == 400
    assert unconfirmed.body["parameter"] == "confirm"
    assert len(await dead_ids(hub)) == 2
    dry = await api.post("/api/dead/purge", {"all": True, "dry_run": True})
    assert dry.body["counts"] == {"would purge": 2}
    assert len(await dead_ids(hub)) == 2
    done = await api.post("/api/dead/purge", {"partner": "crm", "confirm": True})
    assert done.status == 200, done.body
    assert done.body["counts"] == {"purged": 2}
    assert await dead_ids(hub) == []
    purged = await api.get("/api/dead?state=purged")
    assert {row["settled_by"].split(" (")[0] for row in purged.body} == {"ops-api"}
    assert len((await api.get("/api/dead?state=any&limit=1")).body) == 1


async def test_bad_parameters_are_named(api: OpsApi) -> None:
    for path, parameter in (
        ("/api/dead?since=yesterday", "since"),
        ("/api/dead?record=R-1", "record"),
        ("/api/dead?state=gone", "state"),
        ("/api/dead?limit=0", "limit"),
        ("/api/dead?partnr=crm", "partnr"),
        ("/api/dead/abc", "id"),
        ("/api/trace/nonsense", "ref"),
        ("/api/check?ingress=maybe", "ingress"),
    ):
        answer = await api.get(path)
        assert (answer.status, answer.body.get("parameter")) == (400, parameter), path
        assert parameter in answer.body["error"]
    for body, parameter in (
        ({"ids": ["one"]}, "ids"),
        ({"partner": "crm", "rate": 0}, "rate"),
        ({"partner": "crm", "dry_run": "yes"}, "dry_run"),
        ({"partners": "crm"}, "partners"),
        ([1, 2], "body"),
    ):
        answer = await api.post("/api/dead/replay", body)
        assert (answer.status, answer.body.get("parameter")) == (400, parameter), body
    text = await api.call("POST", "/api/dead/replay", data="ids=1")
    assert text.status == 415
    assert (await api.get("/api/dead?since=2026-01-01T00:00:00+00:00")).status == 200
    assert (await api.get("/api/dead/999999")).status == 404
    assert (await api.post("/api/mappings/refresh", {"partner": "nobody"})).status == 404
    assert (await api.post("/api/mappings/refresh", {})).body["parameter"] == "partner"
    assert (await api.post("/api/gaps/999999/redeliver")).status == 404
    wrong_method = await api.call("DELETE", "/api/status")
    assert wrong_method.status == 405
    assert "error" in wrong_method.body


async def test_trace_by_uuid_and_by_the_senders_record_id(
    hub: DeliveryHub, api: OpsApi, make_dead: MakeDead
) -> None:
    [record] = await make_dead(["R-1"])
    by_uuid = await api.get(f"/api/trace/{record}", token=READ_TOKEN)
    assert by_uuid.status == 200, by_uuid.body
    [traced] = by_uuid.body
    assert traced["record"]["uuid"] == record
    events = [e["event"] for e in traced["events"]]
    for expected in ("received", "routed", "attempt", "dead letter"):
        assert expected in events, events
    by_id = await api.get("/api/trace/intouch:R-1", token=READ_TOKEN)
    assert [t["record"]["uuid"] for t in by_id.body] == [record]
    missing = await api.get("/api/trace/intouch:NOPE")
    assert missing.status == 404
    assert "NOPE" in missing.body["error"]


async def test_a_closed_gap_is_redelivered_with_its_owner(hub: DeliveryHub, api: OpsApi) -> None:
    await hub.post("staff", staff_xml("S-1", "sam@example.com"))
    record = await hub.post("user", prospect_xml("R-1", owner="S-1"))

    async def delivered() -> bool:
        return record in hub.fake("crm").users

    await eventually(delivered)
    [gap] = (await api.get("/api/gaps?partner=crm", token=READ_TOKEN)).body
    assert (gap["kind"], gap["key"]) == ("staff", "sam@example.com")
    staff_id = hub.fake("crm").add_staff("K-crm", "Sam@Example.com")
    refreshed = await api.post("/api/mappings/refresh", {"partner": "crm"})
    assert refreshed.status == 200, refreshed.body
    assert refreshed.body["partner"] == "crm"
    dry = await api.post(f"/api/gaps/{gap['id']}/redeliver", {"dry_run": True})
    assert dry.body["counts"] == {"would send": 1}
    ran = await api.post(f"/api/gaps/{gap['id']}/redeliver")
    assert ran.body["counts"] == {"sent": 1}

    async def owned() -> bool:
        return hub.fake("crm").users[record].get("ownerId") == staff_id

    await eventually(owned)
    assert hub.fake("crm").creates[record] == 1  # an update, not a second create


async def test_check_and_queues(hub: DeliveryHub, api: OpsApi) -> None:
    checked = await api.get("/api/check", token=READ_TOKEN)
    assert checked.status == 200, checked.body
    assert checked.body["ok"] is True
    assert {c["check"] for c in checked.body["checks"]} == {
        "database",
        "schema",
        "broker",
        "queues",
    }
    queues = (await api.get("/api/queues", token=READ_TOKEN)).body
    crm = [q for q in queues if q["queue"] == f"{hub.settings.namespace}.deliver.crm"]
    assert crm
    assert crm[0]["consumers"] >= 1


async def test_a_broker_that_does_not_answer_is_503(hub: DeliveryHub) -> None:
    service = await serve(hub, amqp_urls=("amqp://guest:guest@127.0.0.1:1/",))
    try:
        async with aiohttp.ClientSession() as http:
            api = OpsApi(f"http://127.0.0.1:{service.port}", http)
            queues = await api.get("/api/queues")
            assert queues.status == 503
            assert "no broker node answered" in queues.body["error"]
            checked = await api.get("/api/check")
            assert checked.status == 503
            assert not next(c for c in checked.body["checks"] if c["check"] == "broker")["ok"]
    finally:
        await service.stop()


async def test_without_tokens_the_api_is_closed(hub: DeliveryHub) -> None:
    service = await serve(hub, ops_token=None, ops_read_token=None)
    try:
        async with aiohttp.ClientSession() as http:
            api = OpsApi(f"http://127.0.0.1:{service.port}", http)
            assert (await api.get("/api/status")).status == 401
            assert (await api.get("/api/status", token="")).status == 401
            assert (await api.get("/healthz", token=None)).status == 200
    finally:
        await service.stop()
