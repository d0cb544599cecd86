"""A fake partner that implements the generic_json contract, for tests and the demo.

It is written from the contract (schemas/generic-json.openapi.yaml), not
from the adapter, so that it catches the adapter straying: unknown or
missing fields, a missing Idempotency-Key or X-Hub-Record are answered 400.
Lead-source creates are deduplicated by Idempotency-Key as the contract asks.
This fake must never import the adapter it tests.

A save is idempotent by hub UUID, so what the fake stores cannot show a
second create; `creates` therefore counts the hub's create calls as the
contract marks them: every PUT without `X-Partner-Id` (the hub holds no
partner ID for the user), each time, the repeats the fake answers as
updates included. A PUT with `X-Partner-Id` is an update, answered 409 when
the fake gave the UUID another ID (and, for a UUID it does not know, a
create of the fake's that the hub did not ask for, so not counted).

    python -m adapters.fakes.generic_json --port 9102 --token-env VAR \\
        [--staff club_id:email ...] [--lead-source club_id:name ...] [--capability C ...]
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web

from adapters.base import Capability
from adapters.fakes.server import (
    FakeServer,
    Refused,
    bearer,
    capabilities_of,
    command_line,
    secret,
    seed,
    serve,
)

USER_FIELDS = frozenset(
    {
        "userType",
        "status",
        "firstName",
        "lastName",
        "birthDate",
        "gender",
        "address1",
        "address2",
        "city",
        "zipCode",
        "state",
        "country",
        "mobile",
        "email",
        "homePhone",
        "workPhone",
        "company",
        "ownerId",
        "leadSourceId",
        "trialStart",
        "trialEnd",
    }
)
_CHOICES = {"userType": ("PROSPECT", "MEMBER"), "status": ("ACTIVE", "INACTIVE")}
_REQUIRED = ("userType", "status", "firstName", "lastName")


class FakeGenericJson(FakeServer):
    """A generic_json partner; `users` are keyed by hub UUID, ids are "P-1", "S-1", "L-1"..."""

    base_path = "/api"

    def __init__(self, token: str, capabilities: set[Capability] | None = None) -> None:
        super().__init__(capabilities)
        self.token = token
        # club ID -> staff ID -> {"id", "email", "firstName", "lastName"}
        self.staff: dict[str, dict[str, dict[str, str]]] = {}
        # club ID -> lead source ID -> name
        self.lead_sources: dict[str, dict[str, str]] = {}
        self._ids = itertools.count(1)
        self._created_by_key: dict[str, str] = {}

    def add_staff(self, club_id: str, email: str, first_name: str = "", last_name: str = "") -> str:
        """Seed a staff member of the partner's club `club_id`; its ID."""
        staff_id = f"S-{next(self._ids)}"
        self.staff.setdefault(club_id, {})[staff_id] = {
            "id": staff_id,
            "email": email,
            "firstName": first_name,
            "lastName": last_name,
        }
        return staff_id

    def add_lead_source(self, club_id: str, name: str) -> str:
        source_id = f"L-{next(self._ids)}"
        self.lead_sources.setdefault(club_id, {})[source_id] = name
        return source_id

    def routes(self) -> list[web.RouteDef]:
        base = f"{self.base_path}/clubs/{{club}}"
        return [
            web.put(f"{base}/users/{{uuid}}", self._save_user),
            web.get(f"{base}/staff", self._staff),
            web.get(f"{base}/lead-sources", self._lead_sources),
            web.post(f"{base}/lead-sources", self._create_lead_source),
        ]

    def authorised(self, request: web.Request) -> bool:
        return bearer(request) == self.token

    def error(self, status: int, message: str, body: str | None = None) -> web.Response:
        text = body if body is not None else orjson.dumps({"error": message}).decode()
        return web.Response(status=status, text=text, content_type="application/json")

    async def _save_user(self, request: web.Request) -> web.Response:
        self.require(Capability.USER_SAVE)
        hub_uuid = request.match_info["uuid"]
        try:
            uuid.UUID(hub_uuid)
        except ValueError:
            raise Refused(400, f"{hub_uuid!r} is not a UUID") from None
        if request.headers.get("X-Hub-Record") != hub_uuid:
            raise Refused(400, "X-Hub-Record must be the hub UUID of the path")
        _idempotency_key(request)
        user = await _json_object(request)
        if problems := _user_problems(user):
            raise Refused(400, "; ".join(problems))
        known = request.headers.get("X-Partner-Id")
        if known is None:
            self.count_create(request, hub_uuid)
        elif hub_uuid in self.partner_ids and unquote(known) != self.partner_ids[hub_uuid]:
            raise Refused(409, "X-Partner-Id is not this partner's ID for the hub UUID")
        created = hub_uuid not in self.partner_ids
        if created:
            self.partner_ids[hub_uuid] = f"P-{next(self._ids)}"
        self.users[hub_uuid] = user
        return web.json_response({"id": self.partner_ids[hub_uuid]}, status=201 if created else 200)

    async def _staff(self, request: web.Request) -> web.Response:
        email = request.query.get("email")
        staff = list(self.staff.get(request.match_info["club"], {}).values())
        if email is None:
            self.require(Capability.STAFF_LIST)
        else:
            self.require(Capability.STAFF_FIND_BY_EMAIL)
            wanted = email.strip().lower()
            staff = [s for s in staff if s["email"].strip().lower() == wanted]
        return web.json_response(staff)

    async def _lead_sources(self, request: web.Request) -> web.Response:
        self.require(Capability.LEADSOURCE_LIST)
        sources = self.lead_sources.get(request.match_info["club"], {})
        return web.json_response([{"id": i, "name": name} for i, name in sources.items()])

    async def _create_lead_source(self, request: web.Request) -> web.Response:
        self.require(Capability.LEADSOURCE_CREATE)
        key = _idempotency_key(request)
        body = await _json_object(request)
        name = body.get("name")
        if set(body) != {"name"} or not isinstance(name, str) or not name.strip():
            raise Refused(400, 'the body must be {"name": "<a name>"}')
        if key not in self._created_by_key:  # a repeated key is the same create
            self._created_by_key[key] = self.add_lead_source(request.match_info["club"], name)
        return web.json_response({"id": self._created_by_key[key]}, status=201)


def _idempotency_key(request: web.Request) -> str:
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        raise Refused(400, "Idempotency-Key is missing")
    return key


async def _json_object(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise Refused(415, f"Content-Type must be application/json, not {request.content_type!r}")
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise Refused(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, "the body must be a JSON object")
    return body


def _user_problems(user: dict[str, Any]) -> list[str]:
    problems = [f"{name}: unknown field" for name in sorted(set(user) - USER_FIELDS)]
    problems += [f"{name}: must be a string" for name, v in user.items() if not isinstance(v, str)]
    problems += [f"{name}: is mandatory" for name in _REQUIRED if not user.get(name)]
    problems += [
        f"{name}: must be one of {', '.join(allowed)}"
        for name, allowed in _CHOICES.items()
        if name in user and user[name] not in allowed
    ]
    return problems


def main(argv: list[str] | None = None) -> None:
    parser = command_line("generic_json", "A fake generic_json partner.", 9102)
    parser.add_argument("--token-env", required=True, help="variable holding the bearer token")
    parser.add_argument("--staff", action="append", default=[], metavar="CLUB:EMAIL")
    parser.add_argument("--lead-source", action="append", default=[], metavar="CLUB:NAME")
    args = parser.parse_args(argv)
    fake = FakeGenericJson(secret(parser, args.token_env), capabilities_of(args))
    seed(args.staff, 2, fake.add_staff)
    seed(args.lead_source, 2, fake.add_lead_source)
    asyncio.run(serve(fake, args.host, args.port, "fake generic_json partner"))


if __name__ == "__main__":
    main()
