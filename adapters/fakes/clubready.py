"""A fake ClubReady API (JSON), for tests and the demo.

Written from ClubReady's published service metadata (CreateProspectRequest,
UserAccountRequest, the `Success`/`Message` base of every answer), not from
the adapter, which it must never import. Routes under `/api/current`:

    POST /users/prospect     create a prospect -> {"UserId", "Success": true, ...}
    PUT  /users/{UserId}     update a user     -> {"Success": true, "Message"}
    GET  /users/find?Email=  the store's users with that email
    GET  /staff              the store's employees
    GET  /club/referral-types  the store's referral types (route assumed, not documented)

Every call needs `ApiKey` and `StoreId` in the query (names matched without
regard to case, as ServiceStack binds them). Like ClubReady:

    wrong or missing ApiKey             HTTP 401 {"Success": false, "Message": ...}
    missing or unknown StoreId,         HTTP 200 {"Success": false, "Message": ...}
    missing or invalid fields, an
    unknown ReferralTypeId/AssignToId,
    an email already at the store
    `refuse_saves(n, message)`          the next n creates/updates answer 200
                                        {"Success": false, "Message": message}
    fail_next / down (FakeServer)       that status, in the same JSON shape

Stricter than ClubReady, which ignores names it does not know: an unknown
field is refused, so that a misspelt field fails a test instead of vanishing.
StoreId is taken as text (the tests' stores are "K-..."), not as an integer.

`users` is keyed by the user's ExternalId (the hub UUID the adapter sends)
where it has one, otherwise by its UserId; `partner_ids` the same. `creates`
counts every create (POST /users/prospect) that gets past the `refuse_saves`
knob and the field checks, by ExternalId (else the lowercased email), the
second create of an email the store has included, though it is refused: a
create the fake turns away as a duplicate is still a create the hub sent.
Staff, referral types and existing users are seeded with `add_staff`,
`add_referral_type` and `add_user`; IDs are integers from 1001 up.

    python -m adapters.fakes.clubready --port 9103 --key-env VAR \\
        [--staff store:email ...] [--referral-type store:name ...] [--capability C ...]
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
from typing import Any

import orjson
from aiohttp import web

from adapters.base import Capability
from adapters.fakes.server import (
    FakeServer,
    Refused,
    capabilities_of,
    command_line,
    secret,
    seed,
    serve,
)

TEXT = frozenset(
    {"FirstName", "LastName", "Email", "Gender", "DateOfBirth", "City", "State", "Zip"}
    | {"CellPhone", "ExternalId", "Username", "Note", "Coupon"}
)
CREATE = TEXT | {"Address", "Phone", "WorkPhone", "SendEmail", "ReferralTypeId", "AssignToId"}
CREATE |= {"ProspectTypeId", "AddPackageId", "EmailTemplateId", "ReferredBy", "AssignToMethod"}
UPDATE = TEXT | {"Address1", "HomePhone", "ProspectTypeId"}
INTEGERS = frozenset(
    {"ReferralTypeId", "AssignToId", "ProspectTypeId", "AddPackageId", "EmailTemplateId"}
    | {"ReferredBy", "AssignToMethod"}
)
SHOWN = ("UserId", "FirstName", "LastName", "Email", "ExternalId")


class Refusal(Exception):
    """A `"Success": false` answer with HTTP 200, ClubReady's way of saying no."""


class FakeClubReady(FakeServer):
    """One ClubReady API key's stores; `stores` limits which StoreIds exist (None: any)."""

    base_path = "/api/current"

    def __init__(
        self,
        api_key: str,
        capabilities: set[Capability] | None = None,
        *,
        stores: set[str] | None = None,
    ) -> None:
        super().__init__(capabilities)
        self.api_key = api_key
        self.stores = stores
        # UserId -> the user as ClubReady keeps it (its fields, StoreId, UserId).
        self.people: dict[int, dict[str, Any]] = {}
        # StoreId -> UserId -> {"UserId", "FirstName", "LastName", "Email"}
        self.staff: dict[str, dict[int, dict[str, Any]]] = {}
        # StoreId -> ReferralTypeId -> name
        self.referral_types: dict[str, dict[int, str]] = {}
        self._ids = itertools.count(1001)
        self._refusals: list[list[Any]] = []  # [left, message]

    # -- seeds and knobs ----------------------------------------------------------------------

    def add_staff(self, store: str, email: str, first_name: str = "", last_name: str = "") -> int:
        """Seed an employee of `store`; their UserId."""
        user_id = next(self._ids)
        self.staff.setdefault(store, {})[user_id] = {
            "UserId": user_id,
            "FirstName": first_name,
            "LastName": last_name,
            "Email": email,
        }
        return user_id

    def add_referral_type(self, store: str, name: str) -> int:
        referral_type_id = next(self._ids)
        self.referral_types.setdefault(store, {})[referral_type_id] = name
        return referral_type_id

    def add_user(self, store: str, email: str, first_name: str = "Ada", **fields: Any) -> int:
        """Seed a user the club made itself (no ExternalId unless given); their UserId."""
        user_id = next(self._ids)
        person = {"FirstName": first_name, "LastName": "Lovelace", "Email": email, **fields}
        self._keep(user_id, {**person, "StoreId": store, "UserId": user_id})
        return user_id

    def refuse_saves(self, n: int, message: str) -> None:
        """The next `n` creates or updates answer 200 `{"Success": false, "Message": message}`."""
        self._refusals.append([n, message])

    # -- FakeServer ---------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        base = self.base_path
        return [
            web.post(f"{base}/users/prospect", self._create),
            web.get(f"{base}/users/find", self._find),
            web.put(f"{base}/users/{{user_id}}", self._update),
            web.get(f"{base}/staff", self._staff),
            web.get(f"{base}/club/referral-types", self._referral_types),
        ]

    def authorised(self, request: web.Request) -> bool:
        return _param(request, "ApiKey") == self.api_key

    def error(self, status: int, message: str, body: str | None = None) -> web.Response:
        if status == 401:  # the shared middleware speaks of a bearer token; ClubReady of a key
            message = "Access denied: invalid ApiKey"
        text = body if body is not None else _dumps({"Success": False, "Message": message})
        return web.Response(status=status, text=text, content_type="application/json")

    # -- handlers -----------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        self.require(Capability.USER_SAVE)
        try:
            store = self._store(request)
            fields = await _body(request, CREATE)
            self._refuse_if_asked()
            for name in ("FirstName", "LastName", "Email"):
                if not fields.get(name, "").strip():
                    raise Refusal(f"{name} is required")
            if not isinstance(fields.get("SendEmail"), bool):
                raise Refusal("SendEmail is required (true or false)")
            self._check(store, fields)
            self.count_create(request, fields.get("ExternalId") or fields["Email"].casefold())
            self._unique_email(store, fields["Email"])
        except Refusal as refusal:
            return _refused(refusal)
        user_id = next(self._ids)
        self._keep(user_id, {**fields, "StoreId": store, "UserId": user_id})
        return _json(
            {"UserId": user_id, "Success": True, "EmailSent": False, "PackageAdded": False}
        )

    async def _update(self, request: web.Request) -> web.Response:
        self.require(Capability.USER_SAVE)
        text = request.match_info["user_id"]
        if not text.isdigit():
            raise Refused(400, f"UserId {text!r} is not an integer")
        try:
            store = self._store(request)
            fields = await _body(request, UPDATE)
            self._refuse_if_asked()
            person = self.people.get(int(text))
            if person is None or person["StoreId"] != store:
                raise Refusal(f"User {text} not found at this store")
            for name in ("FirstName", "LastName", "Email"):
                if name in fields and not fields[name].strip():
                    raise Refusal(f"{name} cannot be empty")
            self._check(store, fields)
            if _changed(person, fields, "Email"):
                self._unique_email(store, fields["Email"], but=person["UserId"])
        except Refusal as refusal:
            return _refused(refusal)
        self._keep(person["UserId"], {**person, **fields})
        return _json({"Success": True, "Message": "User updated"})

    async def _find(self, request: web.Request) -> web.Response:
        self.require(Capability.USER_SAVE)
        try:
            store = self._store(request)
        except Refusal as refusal:
            return _refused(refusal)
        wanted = (_param(request, "Email") or "").strip().casefold()
        found = [
            {name: person.get(name) for name in SHOWN}
            for person in self.people.values()
            if person["StoreId"] == store and person["Email"].strip().casefold() == wanted
        ]
        return _json(found)

    async def _staff(self, request: web.Request) -> web.Response:
        self.require(Capability.STAFF_LIST)
        try:
            store = self._store(request)
        except Refusal as refusal:
            return _refused(refusal)
        return _json(list(self.staff.get(store, {}).values()))

    async def _referral_types(self, request: web.Request) -> web.Response:
        self.require(Capability.LEADSOURCE_LIST)
        try:
            store = self._store(request)
        except Refusal as refusal:
            return _refused(refusal)
        types = self.referral_types.get(store, {})
        return _json([{"ReferralTypeId": i, "Name": name} for i, name in types.items()])

    # -- rules --------------------------------------------------------------------------------

    def _store(self, request: web.Request) -> str:
        store = _param(request, "StoreId")
        if not store:
            raise Refusal("StoreId OR ChainId is required")
        if self.stores is not None and store not in self.stores:
            raise Refusal(f"Invalid StoreId {store}")
        return store

    def _refuse_if_asked(self) -> None:
        if self._refusals:
            refusal = self._refusals[0]
            refusal[0] -= 1
            if refusal[0] <= 0:
                self._refusals.pop(0)
            raise Refusal(refusal[1])

    def _check(self, store: str, fields: dict[str, Any]) -> None:
        if fields.get("Gender") not in (None, "M", "F"):
            raise Refusal("Invalid Gender (Format:'M'|'F')")
        if "DateOfBirth" in fields:
            try:
                datetime.date.fromisoformat(fields["DateOfBirth"])
            except ValueError:
                raise Refusal("Invalid DateOfBirth (Format:YYYY-MM-DD)") from None
        if "@" not in fields.get("Email", "@"):
            raise Refusal("Invalid Email")
        referral_type = fields.get("ReferralTypeId")
        if referral_type is not None and referral_type not in self.referral_types.get(store, {}):
            raise Refusal(f"Invalid ReferralTypeId {referral_type} for this store")
        owner = fields.get("AssignToId")
        if owner is not None and owner not in self.staff.get(store, {}):
            raise Refusal(f"Invalid AssignToId {owner}: not a staff member of this store")

    def _unique_email(self, store: str, email: str, but: int | None = None) -> None:
        wanted = email.strip().casefold()
        for person in self.people.values():
            same = person["StoreId"] == store and person["Email"].strip().casefold() == wanted
            if same and person["UserId"] != but:
                raise Refusal("A user with this email already exists at this store")

    def _keep(self, user_id: int, person: dict[str, Any]) -> None:
        self.people[user_id] = person
        key = person.get("ExternalId") or str(user_id)
        self.users[key] = person
        self.partner_ids[key] = str(user_id)


def _changed(person: dict[str, Any], fields: dict[str, Any], name: str) -> bool:
    before = str(person.get(name, "")).strip().casefold()
    return name in fields and fields[name].strip().casefold() != before


def _param(request: web.Request, name: str) -> str | None:
    """A query parameter, its name matched without regard to case."""
    wanted = name.casefold()
    for key, value in request.query.items():
        if key.casefold() == wanted:
            return value
    return None


async def _body(request: web.Request, allowed: frozenset[str]) -> dict[str, Any]:
    """The JSON body's fields, each of the right type (Refusal, or Refused for a bad body)."""
    if request.content_type != "application/json":
        raise Refused(415, f"Content-Type must be application/json, not {request.content_type!r}")
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise Refused(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, "the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise Refusal(f"Unknown field(s): {', '.join(unknown)}")
    for name, value in body.items():
        if name in INTEGERS:
            if not isinstance(value, int) or isinstance(value, bool):
                raise Refusal(f"{name} must be an integer")
        elif name != "SendEmail" and not isinstance(value, str):
            raise Refusal(f"{name} must be a string")
    return body


def _refused(refusal: Refusal) -> web.Response:
    return _json({"Success": False, "Message": str(refusal)})


def _json(data: Any) -> web.Response:
    return web.Response(text=_dumps(data), content_type="application/json")


def _dumps(data: Any) -> str:
    return orjson.dumps(data).decode()


def main(argv: list[str] | None = None) -> None:
    parser = command_line("clubready", "A fake ClubReady API.", 9103)
    parser.add_argument("--key-env", required=True, help="variable holding the ApiKey")
    parser.add_argument("--staff", action="append", default=[], metavar="STORE:EMAIL")
    parser.add_argument("--referral-type", action="append", default=[], metavar="STORE:NAME")
    args = parser.parse_args(argv)
    fake = FakeClubReady(secret(parser, args.key_env), capabilities_of(args))
    seed(args.staff, 2, fake.add_staff)
    seed(args.referral_type, 2, fake.add_referral_type)
    asyncio.run(serve(fake, args.host, args.port, "fake ClubReady API"))


if __name__ == "__main__":
    main()
