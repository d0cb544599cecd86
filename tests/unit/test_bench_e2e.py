"""The pure parts of `hub bench e2e`: matching, CPU arithmetic, its tenancy, its verdict."""

from __future__ import annotations

import tomllib

import pytest

from hub.bench import cpu
from hub.bench.e2e_report import E2E, MACHINE, OTHER, E2EReport, Flow, cpu_per_record
from hub.bench.results import PathResult
from hub.bench.stage import RECEIVER, SENDER, TOKEN_ENV, hub_env, tenancy_toml
from hub.bench.tally import Tally, tally
from hub.settings import Settings
from hub.tenancy import parse


def test_every_record_arrived_once() -> None:
    counted = tally({"a": 1.0, "b": 2.0}, {"a": [1.5], "b": [2.25]})
    assert (counted.accepted, counted.received, counted.lost, counted.duplicates) == (2, 2, 0, 0)
    assert sorted(counted.latencies) == [pytest.approx(0.25), pytest.approx(0.5)]
    assert counted.seconds == pytest.approx(1.25)  # first send 1.0 -> last arrival 2.25
    assert counted.rate == pytest.approx(2 / 1.25)


def test_a_record_that_never_arrived_is_lost() -> None:
    counted = tally({"a": 1.0, "b": 2.0}, {"a": [1.5], "b": []})
    assert (counted.received, counted.lost) == (1, 1)
    assert counted.finished == 1.5


def test_saves_beyond_the_first_are_duplicates_and_latency_is_to_the_first() -> None:
    counted = tally({"a": 1.0}, {"a": [3.0, 2.0, 4.0]})
    assert counted.duplicates == 2
    assert counted.latencies == [pytest.approx(1.0)]
    assert counted.finished == 2.0


def test_an_arrival_never_answered_200_is_unexpected_not_received() -> None:
    counted = tally({"a": 1.0}, {"a": [1.1], "stray": [1.2, 1.3]})
    assert (counted.received, counted.unexpected, counted.duplicates) == (1, 1, 1)


def test_nothing_sent_is_no_rate() -> None:
    counted = tally({}, {})
    assert (counted.accepted, counted.seconds, counted.rate) == (0, 0.0, 0.0)


STAT = "1234 (my (odd) name) S 77 1234 1234 0 -1 4194560 500 0 0 0 150 25 7 3 20 0 4 0 99 1 2"


def test_stat_fields_after_a_command_name_with_spaces_and_parentheses() -> None:
    assert cpu.parse_stat(STAT) == cpu.Stat(comm="my (odd) name", ppid=77, own=175, reaped=10)


def test_machine_busy_leaves_idle_iowait_and_steal_out() -> None:
    text = "cpu  100 5 20 800 30 1 4 9 0 0\ncpu0 50 2 10 400 15 0 2 4 0 0\n"
    assert cpu.machine_ticks(text) == (130, 969)


def test_machine_ticks_need_the_cpu_line() -> None:
    with pytest.raises(ValueError, match="cpu"):
        cpu.machine_ticks("intr 1 2 3\n")


def test_a_named_group_counts_its_reaped_children_a_pid_group_does_not() -> None:
    stats = {
        1: cpu.Stat("postgres", 0, own=10, reaped=40),
        2: cpu.Stat("postgres", 1, own=5, reaped=0),
        3: cpu.Stat("python", 1, own=100, reaped=1000),
    }
    assert cpu.named("postgres").ticks(stats) == 55
    assert cpu.pids(3, 99).ticks(stats) == 100  # 99 is gone: nothing


def test_usage_is_the_difference_never_below_zero() -> None:
    before = cpu.Snapshot({"hub": 100, "gone": 50}, busy=1000, total=5000)
    after = cpu.Snapshot({"hub": 300, "gone": 20, "new": 7}, busy=1500, total=7000)
    usage = cpu.Meter.usage(before, after)
    assert usage.groups == {
        "hub": pytest.approx(200 * cpu.TICK),
        "gone": 0.0,
        "new": pytest.approx(7 * cpu.TICK),
    }
    assert usage.busy == pytest.approx(500 * cpu.TICK)
    assert usage.capacity == pytest.approx(2000 * cpu.TICK)


def test_cpu_per_record_in_microseconds_with_the_unclaimed_rest() -> None:
    usage = cpu.Usage({"hub": 0.3, "rabbitmq": 0.1}, busy=0.5, capacity=2.0)
    assert cpu_per_record(usage, 1000) == {
        "hub": pytest.approx(300.0),
        "rabbitmq": pytest.approx(100.0),
        OTHER: pytest.approx(100.0),
        MACHINE: pytest.approx(500.0),
    }
    assert cpu_per_record(usage, 0) == {}
    assert cpu_per_record(None, 1000) == {}


def test_the_bench_tenancy_is_valid_and_subscribes_the_partner() -> None:
    text = tenancy_toml("the-key", "sender-identifier", "http://127.0.0.1:9/api", concurrency=16)
    tenancy = parse(tomllib.loads(text), {TOKEN_ENV: "token"})
    assert tenancy.authenticate("the-key") is tenancy.providers[SENDER]
    (receiver,) = tenancy.receivers()
    assert (receiver.name, receiver.adapter, receiver.concurrency) == (RECEIVER, "generic_json", 16)
    assert receiver.settings["key_env"] == TOKEN_ENV
    (subscription,) = tenancy.clients["bench"].subscriptions
    assert subscription.provider == RECEIVER
    assert "PROSPECT" in subscription.receives


def test_the_hub_environment_overrides_the_namespace_and_keeps_the_rest() -> None:
    settings = Settings(amqp_urls=("amqp://a/", "amqp://b/"), namespace="bench_x")
    env = hub_env(settings, "token", {"HUB_NAMESPACE": "hub", "PATH": "/bin"})
    assert env["HUB_NAMESPACE"] == "bench_x"
    assert env["HUB_AMQP_URL"] == "amqp://a/,amqp://b/"
    assert (env[TOKEN_ENV], env["PATH"]) == ("token", "/bin")


def _report(counted: Tally, offered: float | None, exits: dict[str, int | None]) -> E2EReport:
    answers = PathResult("ingress answer", 2, 2, 1.0, 1.0, 2.0, {})
    flow = Flow(E2E, 2, counted, {}, None, offered)
    return E2EReport("run", {}, answers, flow, None, {201: 2}, exits)


def test_the_verdict_wants_no_loss_a_clean_exit_and_the_rate() -> None:
    fast = Tally(2, 2, 0, 0, 0, [0.01, 0.02], started=0.0, finished=0.001)
    assert _report(fast, None, {"hub": 0}).passed
    assert not _report(fast, None, {"hub": 1}).passed
    lost = Tally(2, 1, 1, 0, 0, [0.01], started=0.0, finished=0.001)
    assert not _report(lost, None, {"hub": 0}).passed
    slow = Tally(2, 2, 0, 0, 0, [0.01, 0.02], started=0.0, finished=1.0)
    assert not _report(slow, None, {"hub": 0}).passed


def test_open_loop_judges_the_p99_not_the_rate() -> None:
    quick = Tally(2, 2, 0, 0, 0, [0.01, 0.02], started=0.0, finished=1.0)
    assert _report(quick, 2.0, {"hub": 0}).passed
    late = Tally(2, 2, 0, 0, 0, [0.01, 0.3], started=0.0, finished=1.0)
    assert not _report(late, 2.0, {"hub": 0}).passed
