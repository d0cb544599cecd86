"""The operators' commands, run as `hub ...` processes against a running hub whose
fake partner made dead letters: list, show, replay (exactly once, filtered,
skipped when a newer version went), purge (confirmed), trace, gaps, check.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from hub.ops import dead
from hub.ops.context import Ops
from hub.store.ops import DeadFilter
from tests.conftest import AMQP_URL, DATABASE_URL, eventually
from tests.delivery.conftest import DeliveryHub, prospect_xml, staff_xml
from tests.fixtures_tenancy import ENV
from tests.ops.conftest import MakeDead


class Ran:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)


async def hub_cmd(hub: DeliveryHub, *args: str, database: str = DATABASE_URL) -> Ran:
    """`hub ARGS` in its own process, on this hub's namespace and tenancy."""
    env = {
        **os.environ,
        **ENV,
        "HUB_NAMESPACE": hub.settings.namespace,
        "HUB_TENANCY_FILE": str(hub.tenancy_file),
        "HUB_AMQP_URL": AMQP_URL,
        "HUB_DATABASE_URL": database,
        "HUB_RETRY_TIERS": ",".join(str(t) for t in hub.settings.retry_tiers),
        "HUB_OPERATOR": "tester",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub",
        "--log-level",
        "WARNING",
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


async def dead_ids(hub: DeliveryHub, partner: str = "crm") -> list[int]:
    rows = await hub.pool.fetch(
        "SELECT id FROM dead_letters WHERE partner = $1 AND state = 'dead' ORDER BY id", partner
    )
    return [r["id"] for r in rows]


async def test_status_and_dead_list_show_what_is_stuck(
    hub: DeliveryHub, make_dead: MakeDead
) -> None:
    [record] = await make_dead(["R-1"])
    status = await hub_cmd(hub, "status")
    assert status.code == 1, status.err  # dead letters: attention
    assert "crm" in status.out
    assert "400" in status.out
    shown = (await hub_cmd(hub, "status", "--json")).json()
    assert {p["partner"] for p in shown["partners"]} == {"crm", "books"}
    assert [d["count"] for d in shown["dead_letters"] if d["partner"] == "crm"] == [1]
    assert all(q["messages"] is not None for q in shown["queues"])

    listed = (await hub_cmd(hub, "dead", "list", "--partner", "crm", "--json")).json()
    assert [(row["partner"], row["uuid"], row["state"]) for row in listed] == [
        ("crm", record, "dead")
    ]
    assert (await hub_cmd(hub, "dead", "list", "--partner", "books", "--json")).json() == []
    assert (await hub_cmd(hub, "dead", "list", "--reason", "LASTNAME", "--json")).json() == []
    assert len((await hub_cmd(hub, "dead", "list", "--reason", "400", "--json")).json()) == 1

    detail = await hub_cmd(hub, "dead", "show", str(listed[0]["id"]))
    assert detail.code == 0, detail.err
    assert "lastName rejected" in detail.out  # the partner's answer, kept
    assert (await hub_cmd(hub, "dead", "show", "999999")).code == 4


async def test_replay_after_the_partner_recovers_delivers_exactly_once(
    hub: DeliveryHub, make_dead: MakeDead
) -> None:
    [record] = await make_dead(["R-1"])
    [dead_id] = await dead_ids(hub)
    assert hub.fake("crm").creates[record] == 0

    ran = await hub_cmd(hub, "dead", "replay", str(dead_id), "--json")
    assert ran.code == 0, ran.err
    assert ran.json()["counts"] == {"sent": 1}

    async def delivered() -> bool:
        return hub.fake("crm").creates[record] == 1

    await eventually(delivered)
    again = (await hub_cmd(hub, "dead", "replay", str(dead_id), "--json")).json()
    assert again["counts"] == {}  # no longer dead: nothing to replay
    await asyncio.sleep(0.5)
    assert hub.fake("crm").creates[record] == 1
    state = await hub.pool.fetchval("SELECT state FROM dead_letters WHERE id = $1", dead_id)
    assert state == "replayed"
    audit = await hub.pool.fetch("SELECT operator, action FROM operator_actions ORDER BY id")
    assert [tuple(a) for a in audit] == [("tester", "replay"), ("tester", "replay")]


async def test_two_operators_replaying_at_once_deliver_once(
    hub: DeliveryHub, ops: Ops, make_dead: MakeDead
) -> None:
    records = await make_dead(["R-1", "R-2"])
    chosen = DeadFilter(partner="crm")
    reports = await asyncio.gather(
        dead.replay(ops, chosen, "ann", rate=1000), dead.replay(ops, chosen, "bob", rate=1000)
    )
    sent = [o for r in reports for o in r.outcomes if o.outcome == "sent"]
    assert sorted(str(o.uuid) for o in sent) == sorted(records)

    async def delivered() -> bool:
        return all(hub.fake("crm").creates[r] == 1 for r in records)

    await eventually(delivered)
    await asyncio.sleep(0.5)
    assert all(hub.fake("crm").creates[r] == 1 for r in records)


async def test_a_filtered_replay_touches_only_what_matches(
    hub: DeliveryHub, make_dead: MakeDead
) -> None:
    at_crm = await make_dead(["R-1", "R-2"], partner="crm")
    [at_books] = await make_dead(["R-3"], partner="books")
    dry = (await hub_cmd(hub, "dead", "replay", "--partner", "books", "--dry-run", "--json")).json()
    assert [o["uuid"] for o in dry["outcomes"]] == [at_books]
    assert dry["counts"] == {"would send": 1}
    ran = (await hub_cmd(hub, "dead", "replay", "--partner", "books", "--json")).json()
    assert [o["uuid"] for o in ran["outcomes"]] == [at_books]

    async def delivered() -> bool:
        return hub.fake("books").creates[at_books] == 1

    await eventually(delivered)
    assert len(await dead_ids(hub, "crm")) == 2
    assert all(hub.fake("crm").creates[r] == 0 for r in at_crm)
    nothing = await hub_cmd(hub, "dead", "replay")
    assert nothing.code == 2
    assert "--all" in nothing.err


async def test_a_replay_of_a_record_whose_newer_version_went_is_skipped(
    hub: DeliveryHub, make_dead: MakeDead
) -> None:
    [record] = await make_dead(["R-1"])
    await hub.post("user", prospect_xml("R-1", firstname="Augusta"))  # version 2, delivered

    async def delivered() -> bool:
        return hub.fake("crm").users.get(record, {}).get("firstName") == "Augusta"

    await eventually(delivered)
    ran = (await hub_cmd(hub, "dead", "replay", "--record", record, "--json")).json()
    [outcome] = ran["outcomes"]
    assert outcome["outcome"] == "skipped"
    assert "has version 2 already, newer than the dead version 1" in outcome["detail"]
    assert hub.fake("crm").creates[record] == 1


async def test_purge_needs_confirmation(hub: DeliveryHub, make_dead: MakeDead) -> None:
    await make_dead(["R-1", "R-2"])
    refused = await hub_cmd(hub, "dead", "purge", "--partner", "crm")
    assert refused.code == 5
    assert "--yes" in refused.err
    assert len(await dead_ids(hub)) == 2
    dry = (await hub_cmd(hub, "dead", "purge", "--all", "--dry-run", "--json")).json()
    assert dry["counts"] == {"would purge": 2}
    assert len(await dead_ids(hub)) == 2
    done = (await hub_cmd(hub, "dead", "purge", "--partner", "crm", "--yes", "--json")).json()
    assert done["counts"] == {"purged": 2}
    assert await dead_ids(hub) == []
    listed = (await hub_cmd(hub, "dead", "list", "--state", "purged", "--json")).json()
    assert {row["settled_by"] for row in listed} == {"tester"}


async def test_trace_shows_the_whole_path(hub: DeliveryHub, make_dead: MakeDead) -> None:
    [record] = await make_dead(["R-1"])
    await hub_cmd(hub, "dead", "replay", "--all")

    async def delivered() -> bool:
        return hub.fake("crm").creates[record] == 1

    await eventually(delivered)
    by_id = (await hub_cmd(hub, "trace", "intouch:R-1", "--json")).json()
    by_uuid = (await hub_cmd(hub, "trace", record, "--json")).json()
    assert [t["record"]["uuid"] for t in by_id] == [record]
    events = [e["event"] for e in by_uuid[0]["events"]]
    for expected in ("received", "routed", "attempt", "dead letter", "replay"):
        assert expected in events, events
    partners = {p["partner"]: p for p in by_uuid[0]["partners"]}
    assert partners["crm"]["partner_id"]
    assert partners["books"]["partner_id"]
    text = await hub_cmd(hub, "trace", record)
    assert "permanent 400" in text.out
    assert "tester" in text.out
    assert (await hub_cmd(hub, "trace", "intouch:NOPE")).code == 4


async def test_a_closed_gap_is_redelivered_with_its_owner(hub: DeliveryHub) -> None:
    await hub.post("staff", staff_xml("S-1", "sam@example.com"))
    record = await hub.post("user", prospect_xml("R-1", owner="S-1"))

    async def delivered() -> bool:
        return record in hub.fake("crm").users

    await eventually(delivered)
    assert "ownerId" not in hub.fake("crm").users[record]
    [gap] = (await hub_cmd(hub, "gaps", "--partner", "crm", "--json")).json()
    assert (gap["kind"], gap["key"]) == ("staff", "sam@example.com")

    staff_id = hub.fake("crm").add_staff("K-crm", "Sam@Example.com")
    refreshed = await hub_cmd(hub, "mappings", "refresh", "--partner", "crm")
    assert refreshed.code == 0, refreshed.err
    ran = (await hub_cmd(hub, "redeliver", "--gap", str(gap["id"]), "--json")).json()
    assert ran["counts"] == {"sent": 1}

    async def owned() -> bool:
        return hub.fake("crm").users[record].get("ownerId") == staff_id

    await eventually(owned)
    assert hub.fake("crm").creates[record] == 1  # an update, not a second create


async def test_check_and_queues(hub: DeliveryHub) -> None:
    checked = await hub_cmd(hub, "check")
    assert checked.code == 0, checked.out + checked.err
    assert "ok   database" in checked.out
    assert "ok   queues" in checked.out
    broken = await hub_cmd(hub, "check", database="postgresql://postgres@127.0.0.1:1/hub")
    assert broken.code == 1
    queues = (await hub_cmd(hub, "queues", "--json")).json()
    names = {q["queue"] for q in queues}
    assert f"{hub.settings.namespace}.deliver.crm" in names
    assert all(q["consumers"] >= 1 for q in queues if q["queue"].endswith(".deliver.crm"))
