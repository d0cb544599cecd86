"""The `hub` command: run components, migrate, benchmark.

The edge of the program: the only place that reads the environment
(`Settings.from_env`) and the tenancy file, configures logging, and turns a
ConfigError into a message and exit code 2.

    hub run          every component in one process (ingress, router, delivery, ops)
    hub ingress      the HTTP ingress only (--processes N: N of them on one port)
    hub router       the router only
    hub deliver      the delivery workers and the dead-letter keeper only
    hub ops          the operators' port only (ops API, /metrics, dashboard)
    hub status, queues, dead, trace, gaps, redeliver, mappings, check
                     the operators' commands (see hub.ops.cli)
    hub demo         the hub with two fake partners and sample records
    hub migrate      apply the database migrations
    hub bench ...    benchmarks (see `hub bench --help`)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import structlog

from hub import logs
from hub.bench import cli as bench_cli
from hub.delivery.service import DeliveryService
from hub.demo import demo
from hub.errors import ConfigError, HubError
from hub.ingress.app import IngressService
from hub.ops import cli as ops_cli
from hub.router import RouterService
from hub.runner import Component, serve
from hub.settings import Settings
from hub.store.migrate import migrate
from hub.supervisor import supervise
from hub.tenancy import load

log = structlog.get_logger("hub")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logs.configure(args.log_level)
    try:
        settings = Settings.from_env()
        return int(args.command(args, settings))
    except ConfigError as exc:
        print(f"hub: configuration error: {exc}", file=sys.stderr)
        return 2
    except HubError as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for name, help_text in (
        ("run", "run every component in one process"),
        ("ingress", "run the HTTP ingress"),
        ("router", "run the router (inbox -> store -> partners' queues)"),
        ("deliver", "run the delivery workers and the dead-letter keeper"),
        ("ops", "run the operators' port: ops API, /metrics, dashboard (HUB_OPS_ADDR)"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.set_defaults(command=_run, components=name, processes=1)
        command.add_argument(
            "--migrate",
            action="store_true",
            help="apply the database migrations first (safe when several processes start)",
        )
        if name == "ingress":
            command.add_argument(
                "--processes",
                type=int,
                default=1,
                metavar="N",
                help="run N ingress processes sharing the port (SO_REUSEPORT)",
            )
    commands.add_parser("migrate", help="apply the database migrations").set_defaults(
        command=_migrate
    )
    commands.add_parser(
        "demo", help="the hub with two fake partners and sample records (make run)"
    ).set_defaults(command=_demo)
    ops_cli.configure(commands)
    bench = commands.add_parser("bench", help="benchmarks")
    bench_cli.configure(bench)
    bench.set_defaults(command=bench_cli.run)
    return parser


def _run(args: argparse.Namespace, settings: Settings) -> int:
    tenancy = load(settings.tenancy_file)  # refuse a bad file before any child starts
    if args.migrate:
        _migrate(args, settings)
    if args.processes > 1:
        return supervise(args.components, args.processes)
    components: list[Component] = []
    if args.components in ("run", "router"):
        components.append(RouterService(settings, tenancy))
    if args.components in ("run", "deliver") and tenancy.receivers():
        components.append(DeliveryService(settings, tenancy))
    if args.components in ("run", "ingress"):
        components.append(IngressService(settings, tenancy))
    if args.components in ("run", "ops"):
        from hub.ops.service import OpsService  # the web app is only built where it serves

        components.append(OpsService(settings, tenancy))
    elif settings.metrics_addr is not None:
        from hub.ops.metrics_port import MetricsService

        components.append(MetricsService(settings.metrics_addr, settings.shutdown_grace))
    _event_loop_policy()
    asyncio.run(serve(components))
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    tenancy = load(settings.tenancy_file)
    _event_loop_policy()
    asyncio.run(demo(settings, tenancy))
    return 0


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    applied = asyncio.run(migrate(settings.database_url, settings.namespace))
    print(f"hub: schema {settings.namespace!r}: " + (", ".join(applied) or "up to date"))
    return 0


def _event_loop_policy() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
