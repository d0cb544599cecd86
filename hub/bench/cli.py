"""`hub bench`: the benchmark subcommands, their options, and one run of them.

`configure(parser)` adds the subcommands to the `bench` parser that
`hub/cli.py` made; `run(args, settings)` runs the chosen one and returns the
exit code: 0 when the targets are met, 1 when one is missed.

    hub bench ingress   N distinct records, C keep-alive connections, to a
                        running ingress; first its two baselines on the same
                        machine (a bare aiohttp handler, raw confirmed
                        publishing to a quorum queue); then the ratios.
    hub bench e2e       N records through a hub the bench starts itself
                        (its own namespace) to a fake partner: records/s and
                        latency from post to partner, lost and duplicated,
                        CPU per record per process; first the bare chain
                        (publish, consume, PUT, ack) and then the ratio.

The baselines run before what they are the baselines of, so that a router
still draining records to the database does not slow them down. `e2e` is
imported only when it runs: it loads the fake partners, which the hub's own
processes must never import.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable
from typing import Protocol

from hub.bench import eventloop
from hub.bench.bare import PATH, bare_server
from hub.bench.documents import Caller
from hub.bench.publish import publish
from hub.bench.report import BARE, INGRESS, PUBLISH, Report
from hub.bench.results import PathResult, combine
from hub.bench.workers import Plan, measure
from hub.settings import Address, Settings

_PUBLISH_IN_FLIGHT = 100
_PUBLISH_SIZE = 1024


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the benchmarks of `hub bench` and their options to `parser`."""
    benchmarks = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    ingress = benchmarks.add_parser(
        "ingress",
        help="records/s and latency of a running ingress, against its baselines",
        description=(
            "Post N distinct <user> records over C keep-alive connections to a running "
            "ingress, after measuring a bare aiohttp handler and raw confirmed publishing "
            "on this machine. Exits 1 when the ingress misses a target."
        ),
    )
    ingress.add_argument(
        "--url", help="the ingress's /user URL (http://HUB_INGRESS_ADDR" + PATH + ")"
    )
    ingress.add_argument(
        "-n", "--records", type=_positive(int), default=20000, help="records per path (%(default)s)"
    )
    ingress.add_argument(
        "-c",
        "--connections",
        type=_positive(int),
        default=64,
        help="keep-alive connections (%(default)s)",
    )
    ingress.add_argument(
        "--rate",
        type=_positive(float),
        help="offered records/s, sent on a schedule (open loop); default: closed loop",
    )
    ingress.add_argument(
        "--key", default="demo-intouch-key", help="the provider's API key (%(default)s)"
    )
    ingress.add_argument(
        "--identifier",
        default="6f1c9a52-0b7e-4c57-9a53-2b1f0c4e8d11",
        help="the provider identifier in every record (%(default)s)",
    )
    ingress.add_argument(
        "--client-id", default="456", help="the clientID in every record (%(default)s)"
    )
    ingress.add_argument(
        "--club-id", default="123", help="the clubID in every record (%(default)s)"
    )
    ingress.add_argument(
        "--processes", type=_positive(int), default=1, help="load-generator processes (%(default)s)"
    )
    ingress.add_argument(
        "--timeout", type=_positive(float), default=30.0, help="seconds per request (%(default)s)"
    )
    ingress.add_argument("--skip-baselines", action="store_true", help="measure the ingress only")
    ingress.add_argument("--json", action="store_true", help="print the report as JSON")
    _configure_e2e(benchmarks)


def _configure_e2e(benchmarks: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    e2e = benchmarks.add_parser(
        "e2e",
        help="records/s, latency and losses from post to partner, against the bare chain",
        description=(
            "Start a hub (own namespace, schema and tenancy; removed afterwards) and a fake "
            "generic_json partner, post N distinct records through the hub, and report "
            "records/s and p50/p99 from post to the partner, lost and duplicated records, and "
            "the CPU each record costs in each process; first the bare chain (publish with "
            "confirms, consume, PUT to the same fake, ack) and then the ratio. Uses the "
            "machine's RabbitMQ and PostgreSQL (HUB_AMQP_URL, HUB_DATABASE_URL). "
            "Exits 1 when a target is missed."
        ),
    )
    number = _positive(int)
    e2e.add_argument("-n", "--records", type=number, default=5000, help="records (%(default)s)")
    e2e.add_argument(
        "-c", "--connections", type=number, default=64, help="connections (%(default)s)"
    )
    e2e.add_argument(
        "--rate",
        type=_positive(float),
        help="offered records/s, sent on a schedule (open loop); default: closed loop",
    )
    e2e.add_argument(
        "--processes",
        type=number,
        default=1,
        metavar="N",
        help="N hub processes of each role (ingress on one port, competing routers and "
        "delivery workers); N > 1 implies --split (%(default)s)",
    )
    e2e.add_argument(
        "--load-processes",
        type=number,
        default=1,
        help="load-generator processes (%(default)s)",
    )
    e2e.add_argument(
        "--warmup",
        type=_not_negative,
        default=200,
        help="records sent through each chain first, not measured (%(default)s)",
    )
    e2e.add_argument(
        "--partner-concurrency",
        type=number,
        default=32,
        help="the partner's concurrency in the tenancy: deliveries at once (%(default)s)",
    )
    e2e.add_argument(
        "--split",
        action="store_true",
        help="run `hub ingress`, `hub router` and `hub deliver` as three processes, "
        "not `hub run`: each one's CPU is read apart",
    )
    e2e.add_argument(
        "--hub-log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING"],
        help="the hub's log level; its log goes to a file (%(default)s)",
    )
    e2e.add_argument(
        "--timeout", type=_positive(float), default=30.0, help="seconds per post (%(default)s)"
    )
    e2e.add_argument(
        "--wait",
        type=_positive(float),
        default=60.0,
        help="seconds to wait for the last records at the partner (%(default)s)",
    )
    e2e.add_argument("--skip-baseline", action="store_true", help="do not run the bare chain")
    e2e.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the benchmark that `args` names; 0 if its targets are met, else 1."""
    report = _BENCHMARKS[args.benchmark](args, settings)
    print(report.json() if args.json else report.text())
    return 0 if report.passed else 1


def ingress(args: argparse.Namespace, settings: Settings) -> Report:
    """The baselines (unless skipped), then the ingress, with the same records and load."""
    run_id = uuid.uuid4().hex[:8]
    caller = Caller(args.key, args.identifier, args.client_id, args.club_id)

    def plan(url: str) -> Plan:
        return Plan(
            url=url,
            caller=caller,
            run_id=run_id,
            records=args.records,
            connections=args.connections,
            processes=args.processes,
            rate=args.rate,
            timeout=args.timeout,
        )

    paths: list[PathResult] = []
    if not args.skip_baselines:
        _progress(f"{BARE}: {args.records} records, {args.connections} connections")
        with bare_server() as url:
            paths.append(measure(BARE, plan(url)))
        _progress(f"{PUBLISH}: {args.records} x 1 KB, {_PUBLISH_IN_FLIGHT} in flight")
        sample = eventloop.run(
            publish(settings, run_id, args.records, _PUBLISH_IN_FLIGHT, _PUBLISH_SIZE)
        )
        paths.append(combine(PUBLISH, [sample]))
    url = args.url or default_url(settings.ingress_addr)
    _progress(f"{INGRESS}: {args.records} records, {args.connections} connections, {url}")
    paths.append(measure(INGRESS, plan(url)))
    setup = {
        "records": args.records,
        "connections": args.connections,
        "processes": args.processes,
        "offered": args.rate,
        "loop": eventloop.name(),
        "url": url,
    }
    return Report(run_id, setup, paths)


def end_to_end(args: argparse.Namespace, settings: Settings) -> Printable:
    """The bare chain (unless skipped), then N records through a hub of the bench's own."""
    from hub.bench.e2e import Options, e2e

    options = Options(
        records=args.records,
        connections=args.connections,
        rate=args.rate,
        processes=args.load_processes,
        timeout=args.timeout,
        wait=args.wait,
        warmup=args.warmup,
        concurrency=args.partner_concurrency,
        split=args.split or args.processes > 1,
        per_role=args.processes,
        log_level=args.hub_log_level,
        baseline=not args.skip_baseline,
    )
    return e2e(options, settings)


class Printable(Protocol):
    """What a benchmark returns: a report that prints as text or JSON, and a verdict."""

    @property
    def passed(self) -> bool: ...

    def text(self) -> str: ...

    def json(self) -> str: ...


_BENCHMARKS: dict[str, Callable[[argparse.Namespace, Settings], Printable]] = {
    "ingress": ingress,
    "e2e": end_to_end,
}


def default_url(address: Address) -> str:
    """The ingress's /user URL on this machine, for an address it listens on."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(address.host, address.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{address.port}{PATH}"


def _progress(message: str) -> None:
    print(f"hub bench: {message}", file=sys.stderr, flush=True)


def _not_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return value


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
        return value

    return parse
