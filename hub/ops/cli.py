"""The operators' commands: tables on a terminal, `--json` for scripts.

    hub status                       queues, partners, dead letters: what flows, what is stuck
    hub queues [--watch]             queue depths and consumers
    hub dead list [filters]          dead letters (filters: --partner --reason --since --until
                                     --record --state)
    hub dead show ID                 one dead letter: the record, every attempt and its answer
    hub dead replay (ID... | --partner P [filters] | --all) [--dry-run] [--rate R]
    hub dead purge (same) [--dry-run] [--yes]
    hub trace (UUID | PROVIDER:RECORD_ID)
    hub gaps [--partner P]           unmatched staff emails and lead-source names
    hub redeliver --gap ID           deliver again what went without that owner or lead source
    hub mappings refresh --partner P drop the partner's cached staff and lead-source lists
    hub check [--ingress]            database, schema, broker, queues (a container probe)
    hub partner check NAME           the partner's read-only capabilities against the tenancy

Exit codes: 0 done, all well; 1 something needs attention (status: dead letters,
an open circuit, a missing queue; check: a check failed); 2 usage or
configuration; 3 the database or the broker is unavailable; 4 not found;
5 refused (a purge not confirmed).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import re
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TextIO

from hub.errors import NotFound, TransientError
from hub.ops import dead, gaps, partner_check, status, trace
from hub.ops.context import Ops, operator_name
from hub.settings import Settings
from hub.store.ops import DeadFilter
from hub.tenancy import load

OK, ATTENTION, USAGE, UNAVAILABLE, NOT_FOUND, REFUSED = 0, 1, 2, 3, 4, 5

Command = Callable[[Ops, argparse.Namespace, TextIO], Awaitable[int]]


def configure(commands: Any) -> None:
    """Add the operators' commands to the `hub` command's subparsers."""
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print JSON, not tables")

    def add(name: str, command: Command, help_text: str, parent: Any = commands) -> Any:
        parser = parent.add_parser(name, help=help_text, parents=[json_flag])
        parser.set_defaults(command=_runner(command))
        return parser

    add("status", _status, "queues, partners and dead letters: what flows, what is stuck")
    queues = add("queues", _queues, "queue depths and consumers")
    queues.add_argument("--watch", action="store_true", help="refresh every 2 s until Ctrl-C")

    dead_parser = commands.add_parser("dead", help="dead letters: list, show, replay, purge")
    dead_commands = dead_parser.add_subparsers(required=True, metavar="ACTION")
    listing = add("list", _dead_list, "list dead letters", dead_commands)
    _filters(listing, state=True)
    listing.add_argument("--limit", type=int, default=200, help="at most this many (200)")
    show = add("show", _dead_show, "one dead letter with its record and attempts", dead_commands)
    show.add_argument("id", type=int)
    for name, command, help_text in (
        ("replay", _dead_replay, "deliver dead letters again (latest version, today's mappings)"),
        ("purge", _dead_purge, "mark dead letters as purged (kept, no longer waiting)"),
    ):
        parser = add(name, command, help_text, dead_commands)
        parser.add_argument("ids", type=int, nargs="*", metavar="ID")
        _filters(parser, state=False)
        parser.add_argument("--all", action="store_true", help="every dead letter")
        parser.add_argument("--dry-run", action="store_true", help="say what would happen")
        if name == "replay":
            parser.add_argument("--rate", type=float, default=20.0, help="replays a second (20)")
        else:
            parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    tracing = add("trace", _trace, "a record's whole path")
    tracing.add_argument("ref", metavar="UUID|PROVIDER:RECORD_ID")
    gap_list = add("gaps", _gaps, "mapping gaps: unmatched owners and lead sources")
    gap_list.add_argument("--partner")
    again = add("redeliver", _redeliver, "deliver again the records a mapping gap left without")
    again.add_argument("--gap", type=int, required=True, metavar="ID")
    again.add_argument("--dry-run", action="store_true")
    again.add_argument("--rate", type=float, default=20.0, help="records a second (20)")
    mappings = commands.add_parser("mappings", help="the partners' cached lists")
    mapping_commands = mappings.add_subparsers(required=True, metavar="ACTION")
    refresh = add("refresh", _refresh, "drop a partner's cached lists", mapping_commands)
    refresh.add_argument("--partner", required=True)
    checking = add("check", _check, "database, schema, broker, queues: exit 0 or 1")
    checking.add_argument("--ingress", action="store_true", help="also the ingress's /readyz")
    partner = commands.add_parser("partner", help="onboarding a partner")
    partner_commands = partner.add_subparsers(required=True, metavar="ACTION")
    probing = partner_commands.add_parser(
        "check",
        help="call the partner's read-only capabilities; exit 1 if one declared fails",
        parents=[json_flag],
    )
    probing.add_argument("name", help="the provider's name in the tenancy file")
    probing.set_defaults(command=_partner_check)


def _filters(parser: argparse.ArgumentParser, *, state: bool) -> None:
    parser.add_argument("--partner", help="this partner's (or 'inbox')")
    parser.add_argument("--reason", help="reason contains this text (any case)")
    parser.add_argument(
        "--since", type=when, help="dead at or after (ISO 8601, or 30m, 2h, 1d ago)"
    )
    parser.add_argument("--until", type=when, help="dead before (same forms)")
    parser.add_argument("--record", type=uuid.UUID, help="of this record (hub UUID)")
    if state:
        parser.add_argument(
            "--state",
            default="dead",
            choices=["dead", "replayed", "skipped", "purged", "any"],
            help="dead (the default), or any",
        )


_AGO = re.compile(r"^(\d+)\s*([smhd])$")


def when(text: str) -> datetime.datetime:
    """ISO 8601 (UTC if no zone), or an age: 30s, 15m, 2h, 1d ago."""
    match = _AGO.match(text.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]
        delta = datetime.timedelta(**{unit: int(match[1])})
        return datetime.datetime.now(datetime.UTC) - delta
    try:
        parsed = datetime.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time (2026-11-26T10:00, or 30m, 2h, 1d)"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def chosen(args: argparse.Namespace) -> DeadFilter:
    partner = getattr(args, "partner", None)
    state = getattr(args, "state", "dead")
    return DeadFilter(
        ids=tuple(getattr(args, "ids", ()) or ()),
        partner=partner,
        reason=args.reason,
        since=args.since,
        until=args.until,
        record=args.record,
        state=None if state == "any" else state,
    )


def _runner(command: Command) -> Callable[[argparse.Namespace, Settings], int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        tenancy = load(settings.tenancy_file)
        return asyncio.run(_with_ops(command, args, settings, tenancy))

    return run


async def _with_ops(
    command: Command, args: argparse.Namespace, settings: Settings, tenancy: Any
) -> int:
    out = sys.stdout
    try:
        async with await Ops.open(settings, tenancy) as ops:
            return await command(ops, args, out)
    except NotFound as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return NOT_FOUND
    except TransientError as exc:
        print(f"hub: {exc}", file=sys.stderr)
        # A probe knows 0 and 1 only: what it cannot reach is not healthy.
        return ATTENTION if command is _check else UNAVAILABLE


# The commands.


async def _status(ops: Ops, args: argparse.Namespace, out: TextIO) -> int:
    found = await status.status(ops)
    if args.json:
        _json(found.to_json(), out)
    else:
        _table(out, "partners", found.partners, _PARTNER_COLUMNS)
        _table(out, "queues", found.queues, _QUEUE_COLUMNS)
        _table(out, "dead letters waiting", found.dead, ("partner", "reason", "count", "last"))
    return ATTENTION if found.stuck else OK


# unacked and the rates come from the management plugin, where it answers ("-" without).
_QUEUE_COLUMNS = ("queue", "messages", "unacked", "consumers", "in_per_s", "out_per_s")

_PARTNER_COLUMNS = (
    "partner",
    "waiting",
    "oldest_wait_s",
    "delivered_5m",
    "failed_5m",
    "circuit",
    "last_error",
)


async def _queues(ops: Ops, args: argparse.Namespace, out: TextIO) -> int:
    while True:
        found = await status.queues(ops)
        if args.json:
            _json(found, out)
        else:
            if args.watch:
                out.write("\x1b[2J\x1b[H")  # clear the terminal
                out.write(f"{datetime.datetime.now():%H:%M:%S}  (Ctrl-C stops)\n")
            _table(out, "queues", found, _QUEUE_COLUMNS)
        out.flush()
        if not args.watch:
            return ATTENTION if any(q["messages"] is None for q in found) else OK
        await asyncio.sleep(2)


async def _dead_list(ops: Ops, args: argparse.Namespace, out: TextIO) -> int:
    rows = await dead.listing(ops, chosen(args), args.limit)
    if args.json:
        _json(rows, out)
    else:
        columns = ("id", "partner", "uuid", "version", "state", "dead_at", "deaths", "reason")
        _table(out, f"dead letters ({len(rows)})", rows, columns)
    return OK


async def _dead_show(ops: Ops, args: argparse.Namespace, out: TextIO) -> int:
    shown = await dead.show(ops, args.id)
    if args.json:
        _json(shown, out)
        return OK
    for key in (
        "id",
        "state",
        "partner",
        "queue",
        "uuid",
        "version",
        "reason",
        "dead_at",
        "deaths",
    ):
        out.write(f"{key:>9}: {shown.get(key)}\n")
    record = shown.get("record")
    if record:
        out.write(
            f"\nrecord {record['uuid']}: {record['kind']} {record['provider']}:"
            f"{record['record_id']} ({record['client']}/{record['club']}), version"
            f" {record['version']}, modified {record['modified_at']}\n"
        )
    _table(
        out,
        "attempts",
        shown["attempts"],
        ("at", "partner", "version", "attempt", "outcome", "status", "latency_ms", "error"),
    )
    for attempt in shown["attempts"]:
        if attempt.get("answer"):
            out.write(
                f"  answer to attempt {attempt['attempt']} ({attempt['at']}): {attempt['answer']}\n"
            )
    _table(out, "replays", shown["replays"], ("at", "operator", "outcome", "detail"))
    return OK


def _selection(args: argparse.Namespace) -> DeadFilter | None:
    """The filter, or None if nothing was chosen (a replay or purge of everything needs --all)."""
    selected = chosen(args)
    narrowed = (
        selected.ids or args.partner or args.reason or args.since or args.until or args.record
    )
    return selected if narrowed or args.all else None


async def _dead_replay(ops: Ops, args: argparse.Namespace, out: TextIO) -> int:
    selected = _selection(args)
    if selected is None:
        print("hub: say which: IDs, filters (--partner ...), or --all", file=sys.stderr)
        return USAGE
    report = await dead.replay(
        ops,
        selected,
        operator_name(),
        dry_run=args.dry_run,
        rate=args.rate,
        progress=None if args.json else _progress_bar(sys.stderr),
    )
    _report(report, args, out)
    return OK


async def _dead_purge(ops: Ops, args: argparse.Namespace, out: TextIO) -> int:
    selected = _selection(args)
    if selected is None:
        print("hub: say which: IDs, filters (--partner ...), or --all", file=sys.stderr)
        return USAGE
    if not args.dry_run and not args.yes:
        preview = await dead.purge(ops, selected, operator_name(), dry_run=True)
        if not preview.outcomes:
            out.write("nothing to purge\n")
            return OK
        if not _confirm(f"purge {len(preview.outcomes)} dead letter(s)?"):
            print("hub: not purged (confirm, or pass --yes)", file=sys.stderr)
            return REFUSED
    report = await dead.purge(ops, selected, operator_name(), dry_run=args.dry_run)
    _report(report, args, out)
    return OK


async def _trace(ops: Ops, args: argparse.Namespace, out: TextIO) -> int:
    found = [await trace.trace(ops, u) for u in await trace.resolve(ops, args.ref)]
    if args.json:
        _json(found, out)
        return OK
    for one in found:
        record = one["record"]
        out.write(
            f"record {record['uuid']}: {record['kind']} {record['provider']}:{record['record_id']}"
            f" ({record['client']}/{record['club']}), version {record['version']}\n"
        )
        _table(
            out,
            "at each partner",
            one["partners"],
            ("partner", "partner_id", "delivered_version", "routed_version", "waiting"),
        )
        _table(out, "path", one["events"], ("at", "event", "detail"))
    return OK


async def _gaps(ops: Ops, args: argparse.Namespace, out: TextIO) -> int:
    rows = await gaps.listing(ops, args.partner)
    if args.json:
        _json(rows, out)
    else:
        columns = ("id", "partner", "client_id", "club_id", "kind", "key", "count", "last_seen")
        _table(out, f"mapping gaps ({len(rows)})", rows, columns)
    return OK


async def _redeliver(ops: Ops, args: argparse.Namespace, out: TextIO) -> int:
    report = await gaps.redeliver(
        ops,
        args.gap,
        operator_name(),
        dry_run=args.dry_run,
        rate=args.rate,
        progress=None if args.json else _progress_bar(sys.stderr),
    )
    _report(report, args, out)
    return OK


async def _refresh(ops: Ops, args: argparse.Namespace, out: TextIO) -> int:
    result = await gaps.refresh(ops, args.partner, operator_name())
    if args.json:
        _json(result, out)
    else:
        out.write(f"{args.partner}: {result['dropped']} dropped; the next delivery lists again\n")
    return OK


async def _check(ops: Ops, args: argparse.Namespace, out: TextIO) -> int:
    results = await status.check(ops, ingress=args.ingress)
    if args.json:
        _json([{"check": c, "ok": ok, "detail": d} for c, ok, d in results], out)
    else:
        for check, ok, detail in results:
            out.write(f"{'ok  ' if ok else 'FAIL'} {check}: {detail}\n")
    return OK if all(ok for _, ok, _ in results) else ATTENTION


def _partner_check(args: argparse.Namespace, settings: Settings) -> int:
    """Needs neither the database nor the broker: only the tenancy and the partner."""
    tenancy = load(settings.tenancy_file)
    try:
        findings = asyncio.run(partner_check.check(tenancy, args.name))
    except NotFound as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return NOT_FOUND
    out = sys.stdout
    if args.json:
        _json([f.to_json() for f in findings], out)
    else:
        rows = [f.to_json() | {"declared": "yes" if f.declared else "no"} for f in findings]
        _table(out, f"partner {args.name}", rows, _FINDING_COLUMNS)
        mismatches = [f for f in findings if f.mismatch]
        extra = [f.capability for f in findings if f.verdict == "works" and not f.declared]
        if extra:
            out.write(f"works but not declared: {', '.join(sorted(set(extra)))}\n")
        if mismatches:
            out.write("\nmismatches, in full:\n")
            out.writelines(partner_check.in_full(f) for f in mismatches)
        out.write(
            f"{len(mismatches)} mismatches with the tenancy file\n"
            if mismatches
            else "every declared capability that can be called works\n"
        )
    return ATTENTION if any(f.mismatch for f in findings) else OK


_FINDING_COLUMNS = ("capability", "club", "declared", "verdict", "detail")


# Output.


def _report(report: dead.Report, args: argparse.Namespace, out: TextIO) -> None:
    if args.json:
        _json(report.to_json(), out)
        return
    rows = [o.to_json() for o in report.outcomes]
    _table(out, report.action + (" (dry run)" if report.dry_run else ""), rows, _OUTCOME_COLUMNS)
    counts = ", ".join(f"{n} {what}" for what, n in sorted(report.counts().items()))
    action = f" (action {report.action_id})" if report.action_id else ""
    out.write(f"{report.action}{action}: {counts or 'nothing matched'}\n")


_OUTCOME_COLUMNS = ("id", "partner", "uuid", "outcome", "detail")


def _json(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, indent=2, default=str) + "\n")


def _table(out: TextIO, title: str, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    out.write(f"\n{title}\n")
    if not rows:
        out.write("  (none)\n")
        return
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    widths = [min(w, 60) for w in widths]
    out.write("  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + "\n")
    for row in cells:
        out.write(
            "  "
            + "  ".join(v[:w].ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
            + "\n"
        )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    text = str(value)
    if re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", text):  # ISO times: to the second
        return text[:19].replace("T", " ")
    return text.replace("\n", " ")


def _progress_bar(stream: TextIO) -> Callable[[int, int], None] | None:
    if not stream.isatty():
        return None

    def show(done: int, total: int) -> None:
        filled = int(30 * done / total) if total else 30
        stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
        if done == total:
            stream.write("\n")
        stream.flush()

    return show


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False
