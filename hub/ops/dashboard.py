"""The operators' dashboard: HTML pages rendered on the server (no script, no build step)
over the same `Ops` functions as the ops API, which mounts them with `add_routes`.

    GET  /login, POST /login  the token form; a right token sets the `hub_ops_token` cookie
    POST /logout              forgets it
    GET  /                    partners, queues, dead letters by reason (reloads every 5 s)
    GET  /dead                dead letters, filtered; a replay button per dead one (REPLAY)
    POST /dead/replay         replays the ids posted (REPLAY), then back to /dead with the counts
    GET  /dead/{id}           one dead letter: the record, every attempt with its answer, replays
    GET  /trace?ref=          a record's timeline: UUID or PROVIDER:RECORD_ID
    GET  /gaps                the mapping gaps

Who may see a page is the auth middleware's business (`hub.ops.api`); this module checks
only the role that a change needs. It must never change anything on a GET. The forms that
change something are posted with the cookie, which is SameSite=Strict: another site's
page cannot post them for the operator.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

import jinja2
from aiohttp import web

from hub.broker.connection import CONNECT_ERRORS
from hub.errors import HubError, RequestError
from hub.ops import dead, gaps, status, trace
from hub.ops.web import COOKIE, OPS, ROLE, SETTINGS, Role, operator, role, role_of
from hub.store.ops import DeadFilter

TEMPLATES = web.AppKey("templates", jinja2.Environment)
STATES = ("dead", "replayed", "skipped", "purged")
FILTER_KEYS = ("partner", "reason", "state", "record")
LIMIT = 500  # dead letters shown at once; the CLI and the API list more
REFRESH = 5  # seconds between the overview's reloads

# No script anywhere, inline styles only, forms post to this origin, no framing.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline';"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


def add_routes(app: web.Application) -> None:
    """The dashboard's pages on `app`, which holds OPS and SETTINGS and sets request[ROLE]."""
    app[TEMPLATES] = environment()
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", overview)
    app.router.add_get("/dead", dead_letters)
    app.router.add_post("/dead/replay", replay)
    app.router.add_get(r"/dead/{id:\d+}", dead_letter)
    app.router.add_get("/trace", timeline)
    app.router.add_get("/gaps", mapping_gaps)


def environment() -> jinja2.Environment:
    templates = jinja2.Environment(
        loader=jinja2.PackageLoader("hub.ops", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt field fails the tests, not silently
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.filters["when"] = when
    templates.filters["seconds"] = seconds
    templates.filters["pretty"] = pretty
    return templates


def render(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    page = request.app[TEMPLATES].get_template(name)
    text = page.render(role=request.get(ROLE), path=request.path, **context)
    return web.Response(
        text=text, status=status, content_type="text/html", headers=SECURITY_HEADERS
    )


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={**SECURITY_HEADERS, "Location": location})


def page(handler: Handler) -> Handler:
    """A page whose hub errors become an error page: 4xx for the caller's, 503 for the rest."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except RequestError as exc:
            return render(request, "error.html", exc.status, message=exc.message)
        except HubError as exc:
            return render(request, "error.html", 503, message=f"Not available now: {exc}")

    return wrapped


# Login


async def login_form(request: web.Request) -> web.Response:
    return render(request, "login.html", target=_target(request.query.get("next")), error=None)


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    token = str(form.get("token", "")).strip()
    target = _target(str(form.get("next", "")))
    if role_of(request.app[SETTINGS], token) is None:
        error = "That token is not valid." if token else "Give a token."
        return render(request, "login.html", 401, target=target, error=error)
    response = see_other(target)
    # The token itself: the auth middleware reads it as it reads a Bearer header.
    response.set_cookie(
        COOKIE, token, path="/", httponly=True, samesite="Strict", secure=request.secure
    )
    return response


async def logout(request: web.Request) -> web.Response:
    response = see_other("/login")
    response.del_cookie(COOKIE, path="/")
    return response


def _target(given: str | None) -> str:
    """Where to go after logging in: a path on this site only (no `//host`, no scheme)."""
    if given and given.startswith("/") and not given.startswith("//") and "\\" not in given:
        return "/" if given.startswith("/login") else given
    return "/"


# Overview


@page
async def overview(request: web.Request) -> web.Response:
    ops = request.app[OPS]
    partners, partners_error = await _section(status.partners(ops))
    queues, queues_error = await _section(status.queues(ops))
    summary, summary_error = await _section(status.dead(ops))
    return render(
        request,
        "overview.html",
        refresh=REFRESH,
        partners=partners or [],
        partners_error=partners_error,
        queues=queues or [],
        queues_error=queues_error,
        summary=summary or [],
        summary_error=summary_error,
    )


async def _section(work: Awaitable[T]) -> tuple[T | None, str | None]:
    """One part of the overview, or why it is missing: the rest of the page still shows."""
    try:
        return await work, None
    except (HubError, *CONNECT_ERRORS) as exc:
        return None, str(exc) or repr(exc)


# Dead letters


@page
async def dead_letters(request: web.Request) -> web.Response:
    ops = request.app[OPS]
    query = request.query
    chosen = {key: query.get(key, "").strip() for key in FILTER_KEYS}
    chosen["state"] = chosen["state"] or ("any" if "state" in query else "dead")
    partners = sorted({p.name for p in ops.tenancy.receivers()} | {chosen["partner"]} - {""})
    context: dict[str, Any] = {
        "chosen": chosen,
        "partners": partners,
        "states": STATES,
        "back": urlencode(chosen),
        "flash": query.get("flash"),
        "rows": [],
        "more": False,
        "error": None,
    }
    if chosen["state"] not in (*STATES, "any"):
        context["error"] = f"state must be one of {', '.join(STATES)}, or any"
        return render(request, "dead.html", 400, **context)
    records: list[uuid.UUID | None] = [None]
    if chosen["record"]:
        try:
            records = list(await trace.resolve(ops, chosen["record"]))
        except RequestError as exc:
            context["error"] = exc.message
            return render(request, "dead.html", exc.status, **context)
    rows: list[dict[str, Any]] = []
    for record in records:
        wanted = DeadFilter(
            partner=chosen["partner"] or None,
            reason=chosen["reason"] or None,
            record=record,
            state=None if chosen["state"] == "any" else chosen["state"],
        )
        rows += await dead.listing(ops, wanted, LIMIT + 1)
    rows.sort(key=lambda row: row["id"])
    context["rows"] = rows[:LIMIT]
    context["more"] = len(rows) > LIMIT
    return render(request, "dead.html", **context)


@page
async def replay(request: web.Request) -> web.Response:
    if role(request) is not Role.REPLAY:
        return render(
            request,
            "error.html",
            403,
            message="Replaying needs the operator token; this one may only read.",
        )
    form = await request.post()
    try:
        ids = sorted({int(str(value)) for value in form.getall("id", [])})
    except ValueError:
        return render(request, "error.html", 400, message="A dead letter's id is a number.")
    if not ids:
        return render(request, "error.html", 400, message="No dead letter was chosen.")
    report = await dead.replay(request.app[OPS], DeadFilter(ids=ids), operator(request))
    counts = report.counts()
    if counts:
        done = ", ".join(f"{outcome} {count}" for outcome, count in sorted(counts.items()))
        flash = f"Replay (action {report.action_id}): {done}"
    else:
        flash = "Nothing replayed: none of them is dead any more."
    back = [(k, v) for k, v in parse_qsl(str(form.get("back", ""))) if k in FILTER_KEYS]
    return see_other("/dead?" + urlencode([*back, ("flash", flash)]))


@page
async def dead_letter(request: web.Request) -> web.Response:
    shown = await dead.show(request.app[OPS], int(request.match_info["id"]))
    return render(request, "dead_one.html", dead=shown)


# Trace and gaps


@page
async def timeline(request: web.Request) -> web.Response:
    ops = request.app[OPS]
    ref = request.query.get("ref", "").strip()
    context: dict[str, Any] = {"ref": ref, "matches": [], "traced": None, "error": None}
    if not ref:
        return render(request, "trace.html", **context)
    try:
        matches = await trace.resolve(ops, ref)
        if len(matches) == 1:
            context["traced"] = await trace.trace(ops, matches[0])
        else:
            context["matches"] = [str(found) for found in matches]
    except RequestError as exc:
        context["error"] = exc.message
        return render(request, "trace.html", exc.status, **context)
    return render(request, "trace.html", **context)


@page
async def mapping_gaps(request: web.Request) -> web.Response:
    ops = request.app[OPS]
    partner = request.query.get("partner", "").strip()
    found = await gaps.listing(ops, partner or None)
    partners = sorted({p.name for p in ops.tenancy.receivers()} | {partner} - {""})
    return render(request, "gaps.html", gaps=found, partner=partner, partners=partners)


# Filters for the templates


def when(value: str | None) -> str:
    """An ISO timestamp (UTC, as the store gives it) to the second."""
    return value[:19].replace("T", " ") if value else "—"


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


def pretty(value: Any) -> str:
    """A JSON value indented; text (an XML body, an answer) as it is."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
