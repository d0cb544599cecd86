"""`hub bench`: the benchmark subcommands, their options, and one run of them.

`configure(parser)` adds the subcommands to the `bench` parser that
`hub/cli.py` made; `run(args, settings)` runs the chosen one and returns the
exit code: 0 when the targets are met, 1 when one is missed.

    hub bench ingress   N distinct records, C keep-alive connections, to a
                        running ingress; first its two baselines on the same
                        machine (a bare aiohttp handler, raw confirmed
                        publishing to a quorum queue); then the ratios.

The baselines run before the ingress, so that a router still draining the
ingress's records to the database does not slow them down.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable

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


_BENCHMARKS: dict[str, Callable[[argparse.Namespace, Settings], Report]] = {"ingress": ingress}


def default_url(address: Address) -> str:
    """The ingress's /user URL on this machine, for an address it listens on."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(address.host, address.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{address.port}{PATH}"


def _progress(message: str) -> None:
    print(f"hub bench: {message}", file=sys.stderr, flush=True)


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
