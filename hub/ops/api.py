"""The ops API: every operator's command as JSON under /api/ (schemas/ops.openapi.yaml),
`/metrics` for Prometheus and `/healthz`; the dashboard's pages join them when
`hub.ops.dashboard` is installed.

Who may do what is decided in one middleware (`authenticate`): no or a wrong token
is 401 under /api/ and a redirect to /login elsewhere; a change needs the operator
token (`replaying`), else 403. Failures become JSON in one middleware (`answer_json`):
`{"error": message}`, with the `parameter` a 400 is about or the right a 403 lacks.
A GET here must never change anything.
"""

from __future__ import annotations

import datetime
import functools
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import orjson
import structlog
from aiohttp import web

from hub.broker.connection import CONNECT_ERRORS
from hub.errors import Forbidden, RequestError, TransientError, UnsupportedMedia
from hub.ops import dashboard, dead, gaps, metrics, status, trace
from hub.ops.context import Ops
from hub.ops.web import OPEN_PATHS, OPS, ROLE, SETTINGS, Role, operator, role, role_of, token_of
from hub.settings import Settings
from hub.store.ops import DeadFilter

log = structlog.get_logger(__name__)

API = "/api/"
STATES = ("dead", "replayed", "skipped", "purged", "any")
FILTERS = ("partner", "reason", "since", "until", "record")
MAX_LIMIT = 10_000
DEFAULT_RATE = 20.0  # replays a second, as the CLI's

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadParameter(RequestError):
    """A query or body parameter the API cannot use; the answer names it."""

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}")
        self.parameter = parameter


class MissingRight(Forbidden):
    def __init__(self, right: Role) -> None:
        super().__init__(f"this needs the {right.value} right (the operator token)")
        self.right = right


def create_app(ops: Ops, settings: Settings) -> web.Application:
    app = web.Application(middlewares=[authenticate, answer_json])
    app[OPS] = ops
    app[SETTINGS] = settings
    get = functools.partial(app.router.add_get, allow_head=False)
    get("/healthz", healthz)
    get("/metrics", prometheus)
    get("/api/status", overview)
    get("/api/queues", queues)
    get("/api/dead", dead_letters)
    get("/api/dead/{id}", dead_letter)
    app.router.add_post("/api/dead/replay", replay)
    app.router.add_post("/api/dead/purge", purge)
    get("/api/trace/{ref:.+}", tracing)
    get("/api/gaps", mapping_gaps)
    app.router.add_post("/api/gaps/{id}/redeliver", redeliver)
    app.router.add_post("/api/mappings/refresh", refresh)
    get("/api/check", check)
    dashboard.add_routes(app)
    return app


# Middleware


def _is_api(path: str) -> bool:
    return path.startswith(API) or path == API.rstrip("/")


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = token_of(request)
    found = role_of(request.app[SETTINGS], token)
    if found is not None:
        request[ROLE] = found
    elif request.path not in OPEN_PATHS:
        if _is_api(request.path):
            problem = "the token is not valid" if token else "no token given"
            response = _error(401, f"{problem}: send Authorization: Bearer <token>")
            response.headers["WWW-Authenticate"] = 'Bearer realm="hub-ops"'
            return response
        back = request.path_qs if request.method == "GET" else "/"
        raise web.HTTPSeeOther("/login?" + urlencode({"next": back}))
    return await handler(request)


@web.middleware
async def answer_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The API's failures as JSON; the dashboard's pages answer their own."""
    if not _is_api(request.path):
        return await handler(request)
    try:
        return await handler(request)
    except BadParameter as exc:
        return _error(400, exc.message, parameter=exc.parameter)
    except MissingRight as exc:
        return _error(403, exc.message, right=exc.right.value)
    except RequestError as exc:
        return _error(exc.status, exc.message)
    except (TransientError, *CONNECT_ERRORS) as exc:
        response = _error(503, f"not available now: {str(exc) or repr(exc)}")
        response.headers["Retry-After"] = "5"
        return response
    except web.HTTPException as exc:  # aiohttp's own: no such endpoint, method not allowed
        return _http_error(request, exc)
    except Exception:
        log.exception("ops request failed", method=request.method, path=request.path)
        return _error(500, "an unexpected error; the hub's log has the details")


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    if exc.status < 400:
        raise exc
    response = _error(exc.status, f"{exc.reason}: {request.method} {request.path}")
    if "Allow" in exc.headers:
        response.headers["Allow"] = exc.headers["Allow"]
    return response


def _error(status: int, message: str, **more: str) -> web.Response:
    return _json({"error": message, **more}, status)


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status, content_type="application/json")


def replaying(handler: Handler) -> Handler:
    """An endpoint that changes something: the operator token only."""

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        if role(request) is not Role.REPLAY:
            raise MissingRight(Role.REPLAY)
        return await handler(request)

    return checked


# Open endpoints


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def prometheus(request: web.Request) -> web.Response:
    body = await metrics.render(request.app[OPS])
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})


# Reading


async def overview(request: web.Request) -> web.Response:
    found = await status.status(request.app[OPS])
    return _json({**found.to_json(), "stuck": found.stuck})


async def queues(request: web.Request) -> web.Response:
    return _json(await status.queues(request.app[OPS]))


async def dead_letters(request: web.Request) -> web.Response:
    query = _query(request, (*FILTERS, "state", "limit"))
    state = query.get("state", "dead")
    if state not in STATES:
        raise BadParameter("state", f"one of {', '.join(STATES)}")
    chosen = _filter(query, state=None if state == "any" else state)
    limit = _integer("limit", query.get("limit", "500"), MAX_LIMIT)
    return _json(await dead.listing(request.app[OPS], chosen, limit))


async def dead_letter(request: web.Request) -> web.Response:
    dead_id = _integer("id", request.match_info["id"])
    return _json(await dead.show(request.app[OPS], dead_id))


async def tracing(request: web.Request) -> web.Response:
    ops = request.app[OPS]
    ref = request.match_info["ref"]
    if ":" not in ref and not _is_uuid(ref):
        raise BadParameter("ref", f"{ref!r} is neither a UUID nor PROVIDER:RECORD_ID")
    return _json([await trace.trace(ops, found) for found in await trace.resolve(ops, ref)])


async def mapping_gaps(request: web.Request) -> web.Response:
    partner = _query(request, ("partner",)).get("partner")
    return _json(await gaps.listing(request.app[OPS], partner or None))


async def check(request: web.Request) -> web.Response:
    """200 when every check passes, else 503: what a container probe asks."""
    ingress = _flag("ingress", _query(request, ("ingress",)).get("ingress", "false"))
    results = await status.check(request.app[OPS], ingress=ingress)
    ok = all(passed for _, passed, _ in results)
    checks = [{"check": what, "ok": passed, "detail": detail} for what, passed, detail in results]
    return _json({"ok": ok, "checks": checks}, 200 if ok else 503)


# Changing (the operator token)


@replaying
async def replay(request: web.Request) -> web.Response:
    body = await _body(request, (*FILTERS, "ids", "all", "dry_run", "rate"))
    chosen = _selection(body)
    ops = request.app[OPS]
    report = await dead.replay(
        ops, chosen, operator(request), dry_run=_boolean(body, "dry_run"), rate=_rate(body)
    )
    await _unmatched(ops, chosen, report)
    return _json(report.to_json())


@replaying
async def purge(request: web.Request) -> web.Response:
    body = await _body(request, (*FILTERS, "ids", "all", "dry_run", "confirm"))
    chosen = _selection(body)
    dry_run = _boolean(body, "dry_run")
    if not dry_run and not _boolean(body, "confirm"):
        raise BadParameter("confirm", "a purge needs confirm: true (or dry_run: true to preview)")
    ops = request.app[OPS]
    report = await dead.purge(ops, chosen, operator(request), dry_run=dry_run)
    await _unmatched(ops, chosen, report)
    return _json(report.to_json())


async def _unmatched(ops: Ops, chosen: DeadFilter, report: dead.Report) -> None:
    """Add the ids asked for that were not taken, and why: a second replay of an id says
    that it is no longer dead, rather than nothing."""
    missing = sorted(set(chosen.ids) - {outcome.id for outcome in report.outcomes})
    if not missing:
        return
    rows = await dead.listing(ops, DeadFilter(ids=missing, state=None), None)
    found = {row["id"]: row for row in rows}
    for dead_id in missing:
        row = found.get(dead_id)
        if row is None:
            report.outcomes.append(
                dead.Outcome(dead_id, None, None, "not found", f"no dead letter {dead_id}")
            )
            continue
        record = uuid.UUID(row["uuid"]) if row["uuid"] else None
        if row["state"] == "dead":
            outcome, detail = "not matched", "dead, but the other filters leave it out"
        else:
            outcome = "not dead"
            detail = f"no longer dead: {row['state']} by {row['settled_by']} at {row['settled_at']}"
        report.outcomes.append(dead.Outcome(dead_id, row["partner"], record, outcome, detail))


@replaying
async def redeliver(request: web.Request) -> web.Response:
    gap_id = _integer("id", request.match_info["id"])
    body = await _body(request, ("dry_run", "rate"))
    report = await gaps.redeliver(
        request.app[OPS],
        gap_id,
        operator(request),
        dry_run=_boolean(body, "dry_run"),
        rate=_rate(body),
    )
    return _json(report.to_json())


@replaying
async def refresh(request: web.Request) -> web.Response:
    body = await _body(request, ("partner",))
    partner = body.get("partner")
    if not isinstance(partner, str) or not partner.strip():
        raise BadParameter("partner", "the receiving partner's name is needed")
    return _json(await gaps.refresh(request.app[OPS], partner.strip(), operator(request)))


# Parameters


def _query(request: web.Request, known: tuple[str, ...]) -> dict[str, str]:
    """The query's parameters, each once; an unknown one is refused (a typo must not widen)."""
    for name in request.query:
        if name not in known:
            raise BadParameter(name, f"unknown parameter (known: {', '.join(known)})")
    return {name: request.query[name].strip() for name in request.query}


async def _body(request: web.Request, known: tuple[str, ...]) -> dict[str, Any]:
    """The JSON object posted ({} if none); an unknown field is refused."""
    if not request.body_exists:
        return {}
    if request.content_type != "application/json":
        raise UnsupportedMedia("the body must be JSON (Content-Type: application/json)")
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise BadParameter("body", f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadParameter("body", "a JSON object is expected")
    for name in body:
        if name not in known:
            raise BadParameter(name, f"unknown field (known: {', '.join(known)})")
    return body


def _selection(body: Mapping[str, Any]) -> DeadFilter:
    """Which dead letters a replay or purge takes: ids, filters, or all (never by default)."""
    ids = body.get("ids", [])
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in ids
    ):
        raise BadParameter("ids", "a list of dead-letter ids (integers)")
    texts = {}
    for name in FILTERS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise BadParameter(name, "a string is expected")
        if value and value.strip():
            texts[name] = value.strip()
    if not ids and not texts and not _boolean(body, "all"):
        raise BadParameter(
            "ids", "say which: ids, filters (partner, reason, since, until, record), or all: true"
        )
    return _filter(texts, state="dead", ids=tuple(ids))


def _filter(
    given: Mapping[str, str], *, state: str | None, ids: tuple[int, ...] = ()
) -> DeadFilter:
    record = given.get("record")
    return DeadFilter(
        ids=ids,
        partner=given.get("partner") or None,
        reason=given.get("reason") or None,
        since=_time("since", given.get("since")),
        until=_time("until", given.get("until")),
        record=_uuid("record", record) if record else None,
        state=state,
    )


def _time(name: str, text: str | None) -> datetime.datetime | None:
    """ISO 8601, UTC if no zone given; a `+` that a query string made a space is put back."""
    if not text:
        return None
    for candidate in (text, text.replace(" ", "+")):
        try:
            parsed = datetime.datetime.fromisoformat(candidate)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)
    raise BadParameter(name, f"{text!r} is not an ISO 8601 time (2026-11-26T10:00:00Z)")


def _uuid(name: str, text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError as exc:
        raise BadParameter(name, f"{text!r} is not a UUID") from exc


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _integer(name: str, text: str, most: int | None = None) -> int:
    if not text.isdigit() or int(text) < 1 or (most is not None and int(text) > most):
        limit = f" up to {most}" if most is not None else ""
        raise BadParameter(name, f"{text!r} is not a whole number from 1{limit}")
    return int(text)


def _flag(name: str, text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("", "0", "false", "no"):
        return False
    raise BadParameter(name, f"{text!r} is not true or false")


def _boolean(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise BadParameter(name, "true or false")
    return value


def _rate(body: Mapping[str, Any]) -> float:
    value = body.get("rate", DEFAULT_RATE)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1000:
        raise BadParameter("rate", "a number of replays a second, above 0, at most 1000")
    return float(value)
