"""The topology: every work queue is quorum, limited and dead-lettered."""

from __future__ import annotations

from hub.broker.topology import Topology


def test_work_queues_are_dead_lettered_quorum_queues() -> None:
    topology = Topology("ns")
    inbox = topology.inbox.arguments()
    assert inbox["x-queue-type"] == "quorum"
    assert inbox["x-dead-letter-exchange"] == "ns.dead"
    assert inbox["x-dead-letter-strategy"] == "at-least-once"
    assert inbox["x-overflow"] == "reject-publish"
    assert inbox["x-delivery-limit"] == 10
    assert topology.inbox_dead.name == "ns.inbox.dead"
    assert topology.inbox_dead.exchange == "ns.dead"


def test_every_name_is_in_the_namespace() -> None:
    topology = Topology("ns")
    names = [e.name for e in topology.exchanges()] + [q.name for q in topology.queues()]
    assert all(name.startswith("ns.") for name in names)
