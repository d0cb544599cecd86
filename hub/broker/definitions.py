"""The topology as RabbitMQ definitions: what `deploy/rabbitmq/definitions.json` holds.

RabbitMQ imports a definitions file at boot (`load_definitions` in
rabbitmq.conf) or on demand (`rabbitmqctl import_definitions`), so a cluster
can hold every exchange, queue and binding of a namespace before the first hub
process starts. This module turns the one topology (`hub.broker.topology`) into
that file's shape; `tests/unit/test_definitions.py` regenerates the checked-in
file and fails when the two differ, so the file cannot drift from the code.

No policy: every property a queue needs (type, delivery limit, dead-lettering,
overflow, maximum length, TTL) is a queue argument that the hub itself declares, and RabbitMQ
lets an argument win over a policy (for the delivery limit and the TTL it takes
the lower of the two), so a policy could change nothing the hub relies on, or
only tighten it behind the hub's back. This module must never connect to a
broker, nor hold users, passwords or permissions: those are the deployment's
secrets, imported from a file of their own.
"""

from __future__ import annotations

import json
from typing import Any

from hub.broker.topology import Queue, Topology


def definitions(topology: Topology, vhost: str = "/") -> dict[str, Any]:
    """The definitions document of `topology` in `vhost`: what `declare()` creates."""
    return {
        "vhosts": [{"name": vhost}],
        "exchanges": [
            {
                "name": exchange.name,
                "vhost": vhost,
                "type": exchange.type,
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for exchange in topology.exchanges()
        ],
        "queues": [_queue(queue, vhost) for queue in topology.queues()],
        "bindings": [
            {
                "source": queue.exchange,
                "vhost": vhost,
                "destination": queue.name,
                "destination_type": "queue",
                "routing_key": queue.routing_key,
                "arguments": {},
            }
            for queue in topology.queues()
        ],
        "policies": [],
    }


def render(document: dict[str, Any]) -> str:
    """The file's text: two-space indents, one trailing newline (stable for review)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _queue(queue: Queue, vhost: str) -> dict[str, Any]:
    return {
        "name": queue.name,
        "vhost": vhost,
        "durable": True,
        "auto_delete": False,
        "arguments": queue.arguments(),
    }
