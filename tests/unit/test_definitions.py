"""deploy/rabbitmq/definitions.json is the topology the hub declares, for the demo tenancy.

The file is generated from `hub.broker.topology` (through `hub.wiring`, as every
component builds it) with the default settings and deploy/demo/tenancy.toml,
the tenancy that deploy/compose.yaml and deploy/k8s/ run. To accept an
intended change of the topology or of the demo tenancy's receivers:

    HUB_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_definitions.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hub import wiring
from hub.broker.definitions import definitions, render
from hub.broker.topology import Topology
from hub.settings import Settings
from hub.tenancy import load

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "definitions.json"
DEMO_TENANCY = ROOT / "deploy" / "demo" / "tenancy.toml"
# The demo partners' secrets: any value does, the topology depends only on who receives.
DEMO_ENV = {"DEMO_CLUBOS_TOKEN": "any", "DEMO_LEGACY_KEY": "any"}


def demo_topology() -> Topology:
    return wiring.topology(Settings.from_env({}), load(DEMO_TENANCY, DEMO_ENV))


def checked_in() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DEFINITIONS.read_text(encoding="utf-8"))
    return document


def test_the_file_is_what_the_topology_generates() -> None:
    text = render(definitions(demo_topology()))
    if os.environ.get("HUB_UPDATE_GOLDEN"):
        DEFINITIONS.write_text(text, encoding="utf-8")
    assert DEFINITIONS.read_text(encoding="utf-8") == text, (
        "deploy/rabbitmq/definitions.json differs from the topology: review the change, "
        "then HUB_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_definitions.py"
    )


def test_every_queue_of_the_topology_with_the_same_arguments() -> None:
    document = checked_in()
    queues = {q["name"]: q for q in document["queues"]}
    topology = demo_topology()
    for queue in topology.queues():
        assert queue.name in queues, f"{queue.name} is missing from definitions.json"
        found = queues[queue.name]
        assert found["arguments"] == queue.arguments(), queue.name
        assert (found["vhost"], found["durable"], found["auto_delete"]) == ("/", True, False)
    assert set(queues) == {q.name for q in topology.queues()}, "a queue the hub does not declare"


def test_every_exchange_and_binding_of_the_topology() -> None:
    document = checked_in()
    topology = demo_topology()
    exchanges = {e["name"]: e["type"] for e in document["exchanges"] if e["durable"]}
    assert exchanges == {e.name: e.type for e in topology.exchanges()}
    bindings = {
        (b["source"], b["destination"], b["routing_key"])
        for b in document["bindings"]
        if b["destination_type"] == "queue"
    }
    assert bindings == {(q.exchange, q.name, q.routing_key) for q in topology.queues()}


def test_the_demo_topology_is_the_whole_shape() -> None:
    """The demo has two receivers, so the file shows every kind of queue and exchange."""
    names = {q["name"] for q in checked_in()["queues"]}
    assert {"hub.inbox", "hub.inbox.dead"} <= names
    for partner in ("clubos", "legacy"):
        assert {f"hub.deliver.{partner}", f"hub.deliver.{partner}.dead"} <= names
    assert {f"hub.retry.{seconds}s" for seconds in Settings().retry_tiers} <= names
    tier = next(q for q in checked_in()["queues"] if q["name"] == "hub.retry.10s")
    assert tier["arguments"]["x-message-ttl"] == 10_000
    assert tier["arguments"]["x-dead-letter-exchange"] == "hub.deliver"


def test_no_users_or_secrets_in_the_file() -> None:
    document = checked_in()
    assert not {"users", "permissions", "parameters", "global_parameters"} & set(document)
    assert document["policies"] == []
