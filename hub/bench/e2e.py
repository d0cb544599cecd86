"""`hub bench e2e`: records through a hub of the bench's own to a fake partner.

One run, in this order:

    1. the fake partner starts in a process of its own (partner.py);
    2. the bare chain (chain.py) sends a warm-up, then N records to it,
       unless --skip-baseline; it runs before the hub starts, so that
       nothing of the hub's runs beside it;
    3. a namespace, its schema, a tenancy and the hub's processes are
       staged (stage.py) and ready;
    4. a warm-up goes through the hub and is forgotten;
    5. the load generator (workers.py, processes of its own) posts N
       distinct records, closed or open loop; the CPU meter (cpu.py) reads
       every process as the load generators start their clocks and again
       when the last record has arrived (or --wait ran out);
    6. the hub gets SIGTERM; the partner says what arrived, which tally.py
       matches with what was answered 200, by hub UUID (computed from the
       recordID, as the ingress computes it);
    7. the namespace is removed, the partner stopped.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass

from hub.bench import cpu, documents, eventloop, stage
from hub.bench.bare import PATH
from hub.bench.chain import Chain
from hub.bench.e2e_report import ANSWERS, BARE, E2E, E2EReport, Flow
from hub.bench.partner import Partner, partner_process
from hub.bench.results import Sample, combine
from hub.bench.tally import tally
from hub.bench.workers import Plan, samples
from hub.connector.documents import Kind
from hub.records import hub_uuid
from hub.settings import Settings

RABBITMQ = "rabbitmq (beam.smp)"
POSTGRESQL = "postgresql (all)"
PARTNER = "fake partner"
LOAD = "load generator"
BENCH = "bench (this process)"
CHAIN = "bare chain (this process)"
OTHERS = "other processes"

_POLL = 0.05
_CHAIN_IN_FLIGHT = 100
_CHAIN_PREFETCH = 64


@dataclass(frozen=True, slots=True)
class Options:
    records: int
    connections: int
    rate: float | None
    processes: int
    timeout: float
    wait: float
    warmup: int
    concurrency: int
    split: bool
    log_level: str
    baseline: bool
    per_role: int = 1  # hub processes per role (split)


def e2e(options: Options, settings: Settings) -> E2EReport:
    """Run the bare chain (unless skipped), then the hub, and report both."""
    run_id = secrets.token_hex(4)
    namespace = stage.namespace()
    token = secrets.token_hex(16)
    with partner_process(token) as partner:
        bare = _bare(settings, namespace, partner, token, options) if options.baseline else None
        staging = stage.Staging(
            namespace,
            partner.url,
            token,
            options.concurrency,
            options.split,
            options.log_level,
            options.per_role,
        )
        with stage.staged_hub(settings, staging) as hub:
            got, flow, arrivals = _through_hub(hub, partner, options, run_id)
    setup = {
        "records": options.records,
        "connections": options.connections,
        "offered": options.rate,
        "warm-up": options.warmup,
        "hub": _shape(options),
        "partner concurrency": options.concurrency,
        "hub log level": options.log_level,
        "loop": eventloop.name(),
    }
    return E2EReport(
        run_id=run_id,
        setup=setup,
        answers=combine(ANSWERS, got, options.rate),
        e2e=flow,
        bare=bare,
        partner_answers=arrivals,
        exits=dict(hub.codes),
    )


def _bare(
    settings: Settings, namespace: str, partner: Partner, token: str, options: Options
) -> Flow:
    offered = f", {options.rate:g}/s offered" if options.rate else ""
    _progress(f"{BARE}: {options.records} records, {_CHAIN_IN_FLIGHT} in flight{offered}")
    meter = cpu.Meter({CHAIN: cpu.pids(os.getpid()), **_services(partner)}, OTHERS)
    users = f"{partner.url}/clubs/{stage.RECEIVER_IDS[1]}/users"
    chain = Chain(
        settings.amqp_urls,
        f"{namespace}.chain",
        users,
        token,
        in_flight=_CHAIN_IN_FLIGHT,
        prefetch=_CHAIN_PREFETCH,
    )

    async def run() -> tuple[dict[str, float], cpu.Usage]:
        async with chain:
            if options.warmup:
                await chain.run(options.warmup, options.wait)
            partner.take()
            before = meter.snapshot()
            sent = await chain.run(options.records, options.wait, options.rate)
            return sent, meter.usage(before, meter.snapshot())

    sent, usage = eventloop.run(run())
    counted = tally(sent, partner.take().saves)
    return Flow(BARE, options.records, counted, dict(chain.failures), usage, options.rate)


def _through_hub(
    hub: stage.RunningHub, partner: Partner, options: Options, run_id: str
) -> tuple[list[Sample], Flow, dict[int, int]]:
    if options.split:
        each = f" (x{options.per_role})" if options.per_role > 1 else ""
        groups = {f"hub {role}{each}": cpu.pids(*pids) for role, pids in hub.roles.items()}
    else:
        groups = {"hub (ingress+router+delivery)": cpu.pids(*hub.pids.values())}
    meter = cpu.Meter(
        {
            **groups,
            **_services(partner),
            BENCH: cpu.pids(os.getpid()),
        },
        OTHERS,
    )
    if options.warmup:
        _progress(f"warm-up: {options.warmup} records through the hub")
        warm = samples(ANSWERS, _plan(hub, options, f"{run_id}w", options.warmup, None))
        _await_arrivals(partner, sum(len(s.sent) for s in warm), options.wait)
        partner.take()
    _progress(f"{E2E}: {options.records} records, {options.connections} connections, {hub.base}")
    marks: list[cpu.Snapshot] = []
    plan = _plan(hub, options, run_id, options.records, options.rate)
    got = samples(ANSWERS, plan, lambda: marks.append(meter.snapshot()))
    sent = {_uuid(hub.caller, run_id, index): since for s in got for index, since in s.sent.items()}
    _await_arrivals(partner, len(sent), options.wait)
    after = meter.snapshot()
    usage = meter.usage(marks[0], after)
    usage.groups[LOAD] = sum(s.cpu for s in got)
    codes = hub.stop()
    _progress(f"hub stopped: exit codes {codes}")
    arrivals = partner.take()
    failures: Counter[str] = Counter()
    for s in got:
        failures.update(s.failures)
    counted = tally(sent, arrivals.saves)
    flow = Flow(E2E, options.records, counted, dict(failures), usage, options.rate)
    return got, flow, arrivals.statuses


def _shape(options: Options) -> str:
    if not options.split:
        return "one process (hub run)"
    if options.per_role == 1:
        return "split (ingress, router, deliver)"
    return f"split, {options.per_role} processes of each role (ingress, router, deliver)"


def _services(partner: Partner) -> dict[str, cpu.Group]:
    return {
        RABBITMQ: cpu.named("beam.smp"),
        POSTGRESQL: cpu.named("postgres"),
        PARTNER: cpu.pids(partner.pid),
    }


def _plan(
    hub: stage.RunningHub, options: Options, run_id: str, records: int, rate: float | None
) -> Plan:
    return Plan(
        url=f"{hub.base}{PATH}",
        caller=hub.caller,
        run_id=run_id,
        records=records,
        connections=options.connections,
        processes=options.processes,
        rate=rate,
        timeout=options.timeout,
    )


def _uuid(caller: documents.Caller, run_id: str, index: int) -> str:
    """The hub UUID of record `index` of the run, as the ingress makes it."""
    record_id = documents.record_id(run_id, index)
    return str(hub_uuid(stage.SENDER, caller.client_id, caller.club_id, Kind.USER, record_id))


def _await_arrivals(partner: Partner, expected: int, wait: float) -> None:
    """Until `expected` UUIDs have arrived at the partner, or `wait` seconds have passed."""
    deadline = time.monotonic() + wait
    while partner.count() < expected:
        if time.monotonic() > deadline:
            _progress(f"not every record arrived within {wait:g} s")
            return
        time.sleep(_POLL)


def _progress(message: str) -> None:
    print(f"hub bench: {message}", file=sys.stderr, flush=True)
