"""The broker topology, declared in one place.

Every name starts with the namespace. Work queues are quorum queues with a
delivery limit and at-least-once dead-lettering into `<ns>.dead`, where each
has its own dead-letter queue, declared next to it. `deploy/` describes the
same topology; this module is its source.

    <ns>.inbox (direct exchange) --inbox--> <ns>.inbox (quorum queue)
                                               | rejected / delivery limit
    <ns>.dead  (direct exchange) --inbox--> <ns>.inbox.dead (quorum queue)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

INBOX = "inbox"


@dataclass(frozen=True, slots=True)
class Exchange:
    name: str
    type: str = "direct"


@dataclass(frozen=True, slots=True)
class Queue:
    """A durable quorum queue, bound to `exchange` by `routing_key`."""

    name: str
    exchange: str
    routing_key: str
    dead_letter_exchange: str | None = None
    delivery_limit: int | None = None
    extra: tuple[tuple[str, Any], ...] = field(default=())

    def arguments(self) -> dict[str, Any]:
        args: dict[str, Any] = {"x-queue-type": "quorum"}
        if self.dead_letter_exchange is not None:
            args |= {
                "x-dead-letter-exchange": self.dead_letter_exchange,
                "x-dead-letter-routing-key": self.routing_key,
                # at-least-once dead-lettering needs reject-publish overflow
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            }
        if self.delivery_limit is not None:
            args["x-delivery-limit"] = self.delivery_limit
        return args | dict(self.extra)


@dataclass(frozen=True, slots=True)
class Topology:
    """All exchanges and queues of one namespace."""

    namespace: str
    inbox_delivery_limit: int = 10

    @property
    def inbox_exchange(self) -> Exchange:
        return Exchange(f"{self.namespace}.inbox")

    @property
    def dead_exchange(self) -> Exchange:
        return Exchange(f"{self.namespace}.dead")

    @property
    def inbox(self) -> Queue:
        return Queue(
            name=f"{self.namespace}.inbox",
            exchange=self.inbox_exchange.name,
            routing_key=INBOX,
            dead_letter_exchange=self.dead_exchange.name,
            delivery_limit=self.inbox_delivery_limit,
        )

    @property
    def inbox_dead(self) -> Queue:
        return self.dead_letters_of(self.inbox)

    def dead_letters_of(self, queue: Queue) -> Queue:
        return Queue(f"{queue.name}.dead", self.dead_exchange.name, queue.routing_key)

    def exchanges(self) -> Iterator[Exchange]:
        yield self.inbox_exchange
        yield self.dead_exchange

    def queues(self) -> Iterator[Queue]:
        yield self.inbox
        yield self.inbox_dead
