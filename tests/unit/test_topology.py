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


def test_partner_queues_and_delay_tiers() -> None:
    topology = Topology("ns", partners=("crm",), tiers=(10, 60))
    deliver = topology.deliver("crm").arguments()
    assert deliver["x-dead-letter-routing-key"] == "deliver.crm"
    assert topology.dead_letters_of(topology.deliver("crm")).name == "ns.deliver.crm.dead"
    tier = topology.tier(10).arguments()
    assert tier["x-message-ttl"] == 10_000
    assert tier["x-dead-letter-exchange"] == "ns.deliver"
    assert "x-dead-letter-routing-key" not in tier  # keeps the partner's routing key
    assert topology.tier_exchange(10).type == "fanout"


def test_every_queue_has_a_maximum_length_that_refuses_publishes() -> None:
    """A full queue nacks the publisher (reject-publish), never drops its oldest message;
    dead letters get a bound ten times the work queues'."""
    topology = Topology("ns", partners=("crm",), tiers=(10,), max_length=500)
    work = [topology.inbox, topology.deliver("crm"), topology.tier(10)]
    dead = [
        topology.inbox_dead,
        topology.dead_letters_of(topology.deliver("crm")),
        topology.parked,
    ]
    assert {q.name for q in work + dead} == {q.name for q in topology.queues()}
    for queue in work + dead:
        arguments = queue.arguments()
        assert arguments["x-overflow"] == "reject-publish", queue.name
        assert arguments["x-max-length"] == (5000 if queue in dead else 500), queue.name


def test_tier_for_an_attempt_and_a_retry_after() -> None:
    topology = Topology("ns", tiers=(10, 60, 600))
    assert [topology.tier_for(n) for n in (1, 2, 3, 4)] == [10, 60, 600, 600]
    assert topology.tier_for(1, at_least=30) == 60
    assert topology.tier_for(1, at_least=5000) == 600
