"""The broker topology, declared in one place.

Every name starts with the namespace. Work queues are quorum queues with a
delivery limit and at-least-once dead-lettering into `<ns>.dead`, where each
has its own dead-letter queue, declared next to it. Delay tiers are quorum
queues with a message TTL that dead-letter back into the partner's queue
(the message keeps its routing key, the partner's name). `deploy/` describes
the same topology; this module is its source.

    <ns>.inbox   (direct) --inbox-------> <ns>.inbox            (router)
    <ns>.deliver (direct) --PARTNER-----> <ns>.deliver.PARTNER  (delivery worker)
    <ns>.retry.Ns (fanout) -------------> <ns>.retry.Ns  --TTL N s--> <ns>.deliver
    <ns>.dead    (direct) --inbox-------> <ns>.inbox.dead
                          --deliver.P---> <ns>.deliver.P.dead   (keeper -> PostgreSQL)
                          --parked------> <ns>.parked           (nobody: operators)

Every queue the hub consumes has a delivery limit and a dead-letter route,
the dead-letter queues too: a dead letter that the keeper fails to store
`delivery_limit` times (a bug, not an outage: outages are waited out) is
parked in `<ns>.parked`, which nothing consumes, rather than requeued for
ever. Operators see it in `hub queues`.

Every queue has a maximum length (work queues `max_length`, dead-letter
queues ten times that; None: none) with reject-publish overflow: a runaway backlog (a
router stopped, a partner away for hours) makes the broker nack publishes,
which the ingress answers with 503, instead of growing until the broker's
memory or disk alarm blocks every publisher. A queue's arguments cannot
change once declared (PRECONDITION_FAILED): see README, "Not yet".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

INBOX = "inbox"
PARKED = "parked"
DEFAULT_TIERS = (10, 60, 600, 3600)
# Messages a work queue holds at most (HUB_QUEUE_MAX_LENGTH): see README, Settings.
DEFAULT_MAX_LENGTH = 100_000


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
    # None keeps the message's own routing key when it is dead-lettered.
    dead_letter_routing_key: str | None = None
    delivery_limit: int | None = None
    message_ttl_ms: int | None = None
    # Past it the broker nacks publishes (reject-publish) rather than dropping or growing.
    max_length: int | None = None
    extra: tuple[tuple[str, Any], ...] = field(default=())

    def arguments(self) -> dict[str, Any]:
        args: dict[str, Any] = {"x-queue-type": "quorum"}
        if self.dead_letter_exchange is not None:
            args |= {
                "x-dead-letter-exchange": self.dead_letter_exchange,
                # at-least-once dead-lettering needs reject-publish overflow
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            }
            if self.dead_letter_routing_key is not None:
                args["x-dead-letter-routing-key"] = self.dead_letter_routing_key
        if self.delivery_limit is not None:
            args["x-delivery-limit"] = self.delivery_limit
        if self.message_ttl_ms is not None:
            args["x-message-ttl"] = self.message_ttl_ms
        if self.max_length is not None:
            args |= {"x-max-length": self.max_length, "x-overflow": "reject-publish"}
        return args | dict(self.extra)


@dataclass(frozen=True, slots=True)
class Topology:
    """All exchanges and queues of one namespace, for the partners that receive."""

    namespace: str
    partners: tuple[str, ...] = ()
    tiers: tuple[int, ...] = DEFAULT_TIERS
    inbox_delivery_limit: int = 10
    delivery_limit: int = 10
    max_length: int | None = DEFAULT_MAX_LENGTH

    @property
    def inbox_exchange(self) -> Exchange:
        return Exchange(f"{self.namespace}.inbox")

    @property
    def deliver_exchange(self) -> Exchange:
        return Exchange(f"{self.namespace}.deliver")

    @property
    def dead_exchange(self) -> Exchange:
        return Exchange(f"{self.namespace}.dead")

    def tier_exchange(self, seconds: int) -> Exchange:
        return Exchange(f"{self.namespace}.retry.{seconds}s", "fanout")

    @property
    def inbox(self) -> Queue:
        return Queue(
            name=f"{self.namespace}.inbox",
            exchange=self.inbox_exchange.name,
            routing_key=INBOX,
            dead_letter_exchange=self.dead_exchange.name,
            dead_letter_routing_key=INBOX,
            delivery_limit=self.inbox_delivery_limit,
            max_length=self.max_length,
        )

    @property
    def inbox_dead(self) -> Queue:
        return self.dead_letters_of(self.inbox)

    def deliver(self, partner: str) -> Queue:
        return Queue(
            name=f"{self.namespace}.deliver.{partner}",
            exchange=self.deliver_exchange.name,
            routing_key=partner,
            dead_letter_exchange=self.dead_exchange.name,
            dead_letter_routing_key=f"deliver.{partner}",
            delivery_limit=self.delivery_limit,
            max_length=self.max_length,
        )

    def tier(self, seconds: int) -> Queue:
        return Queue(
            name=f"{self.namespace}.retry.{seconds}s",
            exchange=self.tier_exchange(seconds).name,
            routing_key="",
            dead_letter_exchange=self.deliver_exchange.name,
            message_ttl_ms=seconds * 1000,
            max_length=self.max_length,
        )

    def dead_letters_of(self, queue: Queue) -> Queue:
        key = queue.dead_letter_routing_key or queue.routing_key
        # Generous: dead letters wait for the keeper (or an operator), and a refused
        # dead-lettering keeps the message in its work queue (at-least-once).
        bound = 10 * self.max_length if self.max_length else None
        return Queue(
            f"{queue.name}.dead",
            self.dead_exchange.name,
            key,
            dead_letter_exchange=self.dead_exchange.name,
            dead_letter_routing_key=PARKED,
            delivery_limit=self.delivery_limit,
            max_length=bound,
        )

    @property
    def parked(self) -> Queue:
        """Dead letters the keeper could not store: kept for operators, consumed by nobody."""
        bound = 10 * self.max_length if self.max_length else None
        return Queue(
            f"{self.namespace}.{PARKED}", self.dead_exchange.name, PARKED, max_length=bound
        )

    def tier_for(self, attempt: int, at_least: float | None = None) -> int:
        """The delay tier of the `attempt`-th retry (1-based), honouring a Retry-After."""
        tier = self.tiers[min(attempt, len(self.tiers)) - 1]
        if at_least is not None:
            tier = max(tier, next((t for t in self.tiers if t >= at_least), self.tiers[-1]))
        return tier

    def exchanges(self) -> Iterator[Exchange]:
        yield self.inbox_exchange
        yield self.dead_exchange
        if self.partners:
            yield self.deliver_exchange
            for seconds in self.tiers:
                yield self.tier_exchange(seconds)

    def queues(self) -> Iterator[Queue]:
        yield self.inbox
        yield self.inbox_dead
        yield self.parked
        for partner in self.partners:
            yield self.deliver(partner)
            yield self.dead_letters_of(self.deliver(partner))
        if self.partners:
            for seconds in self.tiers:
                yield self.tier(seconds)


def parse_tiers(value: str | Sequence[int]) -> tuple[int, ...]:
    """`"10,60,600"` -> (10, 60, 600); strictly rising positive seconds."""
    tiers = tuple(int(v) for v in (value.split(",") if isinstance(value, str) else value))
    if not tiers or any(t <= 0 for t in tiers) or list(tiers) != sorted(set(tiers)):
        raise ValueError(f"delay tiers must be rising positive seconds, not {value!r}")
    return tiers
