"""A fake Mindbody site (Public API v6 subset), for tests and the demo.

Written from Mindbody's public v6 documentation and its published models
(AddClientRequest, UpdateClientRequest, GetClientsResponse, GetStaffResponse,
GetClientReferralTypesResponse, IssueRequest/IssueResponse, ApiError), not
from the adapter, which it must never import. Under `/public/v6`:

    POST usertoken/issue           {"Username","Password"} -> {"AccessToken","TokenType",...}
    GET  client/clients            ?searchText= (also request.searchText), limit, offset
    POST client/addclient          AddClientRequest -> {"Client": {...}}
    POST client/updateclient       {"Client": {"Id", ...}, "CrossRegionalUpdate"} -> {"Client"}
    GET  client/clientreferraltypes  -> {"ReferralTypes": ["..."]}
    GET  staff/staff               limit, offset -> {"PaginationResponse", "StaffMembers"}

It behaves as the docs say a site does, quirks included:

- Every call needs `API-Key` and `SiteId`; every call but the token issue
  needs a staff user token (`Authorization`, with or without "Bearer "),
  issued for that site. `expire_tokens()` revokes them all (401 next time).
- A daily call quota per site (`daily_quota`, counted per UTC day by
  `now()`): every call that reaches an endpoint counts, token issues and
  refused ones included; past the quota, 429. The docs give no Retry-After
  for it, so none is sent unless `quota_retry_after` is set.
- addclient requires FirstName and LastName; a field AddClientRequest does
  not name, a ReferredBy that is not one of the site's referral types, or a
  SalesReps Id that is no staff member of the site is refused (400).
  updateclient changes only the fields sent; an unknown Id is 404.
- Errors are Mindbody's `{"Error": {"Message": ..., "Code": ...}}`. The docs
  name codes such as `ClientNotFound`; the other codes here are the fake's.

Mindbody keeps no ID of the hub's, so `users` holds each client (its JSON as
last saved, with `Id`) keyed by the client's Id; `creates` counts every
addclient call per person (lowercased email, or "first last" without one),
each one a new client, as at Mindbody (a `Test` add stores nothing and is
not counted). Ids are numbered
from 100000001 (Mindbody's default RSSIDs), staff Ids from 1, per fake.

    python -m adapters.fakes.mindbody --port 9104 --key-env VAR --username NAME \\
        --password-env VAR [--daily-quota N] [--staff site:email ...] \\
        [--referral-type site:name ...] [--capability C ...]
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from adapters.base import Capability
from adapters.fakes.server import (
    FakeServer,
    capabilities_of,
    command_line,
    secret,
    seed,
    serve,
)

# The AddClientRequest model's properties (the docs' list), less the card and billing ones.
CLIENT_FIELDS = frozenset(
    {
        "FirstName", "LastName", "MiddleName", "Email", "BirthDate", "Gender",
        "AddressLine1", "AddressLine2", "City", "State", "PostalCode", "Country",
        "MobilePhone", "HomePhone", "WorkPhone", "WorkExtension", "IsProspect", "IsCompany",
        "Active", "Status", "ReferredBy", "SalesReps", "HomeLocation", "Notes", "Test",
        "SendScheduleEmails", "SendAccountEmails", "SendPromotionalEmails",
        "EmergencyContactInfoName", "EmergencyContactInfoEmail", "EmergencyContactInfoPhone",
        "EmergencyContactInfoRelationship", "LeadChannelId", "NewId", "ProspectStage",
        "ClientIndexes", "CustomClientFields", "ReactivateInactiveClient",
    }
)  # fmt: skip
UPDATE_FIELDS = frozenset({"Client", "Test", "CrossRegionalUpdate", "NewId", "LeadChannelId"})
# Codes for errors the shared knobs and aiohttp raise (the fake's own choice of words).
_CODES = {
    400: "InvalidParameter",
    401: "DeniedAccess",
    403: "DeniedAccess",
    404: "NotFound",
    405: "MethodNotAllowed",
    429: "TooManyRequests",
    500: "InternalException",
    503: "ServiceUnavailable",
}
_Handler = Callable[[web.Request, str], Awaitable[web.Response]]


class _Failed(Exception):
    """An error answer with its Mindbody code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class FakeMindbody(FakeServer):
    """One Mindbody API key's view of its sites; `users` keyed by client Id."""

    base_path = "/public/v6"

    def __init__(
        self,
        api_key: str,
        username: str,
        password: str,
        *,
        daily_quota: int = 1000,
        capabilities: set[Capability] | None = None,
    ) -> None:
        super().__init__(capabilities)
        self.api_key, self.username, self.password = api_key, username, password
        self.daily_quota = daily_quota
        self.quota_retry_after: float | None = None
        self.now: Callable[[], datetime.datetime] = _utcnow
        # (site, UTC date) -> calls that reached an endpoint
        self.calls: Counter[tuple[str, datetime.date]] = Counter()
        self.tokens: dict[str, str] = {}  # token -> the site it was issued for
        self.staff: dict[str, dict[int, dict[str, Any]]] = {}  # site -> Id -> Staff
        self.referral_types: dict[str, list[str]] = {}  # site -> names
        self.sites: dict[str, str] = {}  # client Id -> its site
        self._client_ids = itertools.count(100000001)
        self._staff_ids = itertools.count(1)
        self._token_ids = itertools.count(1)

    # -- seeds and knobs ----------------------------------------------------------------------

    def add_staff(
        self,
        site: str,
        email: str,
        first_name: str = "",
        last_name: str = "",
        staff_id: int | None = None,
    ) -> int:
        """Seed a staff member of `site`; its Id."""
        staff_id = next(self._staff_ids) if staff_id is None else staff_id
        self.staff.setdefault(site, {})[staff_id] = {
            "Id": staff_id,
            "Email": email,
            "FirstName": first_name,
            "LastName": last_name,
            "Name": f"{first_name} {last_name}".strip(),
            "Rep": True,
        }
        return staff_id

    def add_lead_source(self, site: str, name: str) -> str:
        """Seed a referral type of `site` (Mindbody's lead sources are names)."""
        self.referral_types.setdefault(site, []).append(name)
        return name

    def add_client(self, site: str, client: dict[str, Any]) -> str:
        """Seed a client as if staff had added it at the desk (not counted in `creates`)."""
        client_id = str(next(self._client_ids))
        self.users[client_id] = {**client, "Id": client_id}
        self.sites[client_id] = site
        return client_id

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def calls_today(self, site: str) -> int:
        return self.calls[(site, self.now().date())]

    # -- the server ---------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        base = self.base_path
        return [
            web.post(f"{base}/usertoken/issue", self._endpoint(self._issue, token=False)),
            web.get(f"{base}/client/clients", self._endpoint(self._clients)),
            web.post(f"{base}/client/addclient", self._endpoint(self._add_client)),
            web.post(f"{base}/client/updateclient", self._endpoint(self._update_client)),
            web.get(f"{base}/client/clientreferraltypes", self._endpoint(self._referral_types)),
            web.get(f"{base}/staff/staff", self._endpoint(self._staff)),
        ]

    def authorised(self, request: web.Request) -> bool:
        return True  # each endpoint checks, after counting the call against the quota

    def error(self, status: int, message: str, body: str | None = None) -> web.Response:
        return self._error(status, _CODES.get(status, "InternalException"), message, body)

    def _error(self, status: int, code: str, message: str, body: str | None = None) -> web.Response:
        text = body if body is not None else _dumps({"Error": {"Message": message, "Code": code}})
        return web.Response(status=status, text=text, content_type="application/json")

    def _endpoint(self, handler: _Handler, *, token: bool = True) -> Callable[..., Any]:
        async def endpoint(request: web.Request) -> web.Response:
            try:
                return await handler(request, self._admit(request, token))
            except _Failed as exc:
                response = self._error(exc.status, exc.code, exc.message)
                if exc.status == 429 and self.quota_retry_after is not None:
                    response.headers["Retry-After"] = f"{self.quota_retry_after:g}"
                return response

        return endpoint

    def _admit(self, request: web.Request, token: bool) -> str:
        """The call's site, once counted, within the quota and authorised."""
        site = request.headers.get("SiteId", "").strip()
        self.calls[(site, self.now().date())] += 1
        if self.calls[(site, self.now().date())] > self.daily_quota:
            raise _Failed(429, "TooManyRequests", "the daily call quota of this site is used up")
        if request.headers.get("API-Key") != self.api_key:
            raise _Failed(401, "DeniedAccess", "invalid or missing API-Key")
        if not site:
            raise _Failed(400, "InvalidSiteId", "the SiteId header is missing")
        if token:
            value = request.headers.get("Authorization", "").strip()
            value = value[7:].strip() if value.lower().startswith("bearer ") else value
            if self.tokens.get(value) != site:
                raise _Failed(401, "DeniedAccess", "the staff user token is invalid or expired")
        return site

    async def _issue(self, request: web.Request, site: str) -> web.Response:
        body = await _json_object(request)
        if body.get("Username") != self.username or body.get("Password") != self.password:
            raise _Failed(401, "StaffAuthenticationFailed", "invalid username or password")
        token = f"token-{next(self._token_ids)}"
        self.tokens[token] = site
        expires = (self.now() + datetime.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
        user = {"Id": 0, "FirstName": self.username, "LastName": "", "Type": "Staff"}
        answer = {"TokenType": "Bearer", "AccessToken": token, "Expires": expires, "User": user}
        return web.json_response(answer)

    async def _clients(self, request: web.Request, site: str) -> web.Response:
        self.require(Capability.USER_SAVE)
        text = _query(request, "searchText").strip().lower()
        found = [
            client
            for client_id, client in self.users.items()
            if self.sites.get(client_id) == site and (not text or text in _searchable(client))
        ]
        return web.json_response(_page(request, found, "Clients"))

    async def _add_client(self, request: web.Request, site: str) -> web.Response:
        self.require(Capability.USER_SAVE)
        body = await _json_object(request)
        self._check_client(site, body, new=True)
        if body.get("Test"):
            return web.json_response({"Client": {**body, "Id": "0"}})
        client_id = self.add_client(site, body)
        self.count_create(request, _person(body))
        return web.json_response({"Client": self.users[client_id]})

    async def _update_client(self, request: web.Request, site: str) -> web.Response:
        self.require(Capability.USER_SAVE)
        body = await _json_object(request)
        if unknown := sorted(set(body) - UPDATE_FIELDS):
            raise _Failed(400, "InvalidParameter", f"unknown fields: {', '.join(unknown)}")
        client = body.get("Client")
        if not isinstance(client, dict) or not isinstance(client.get("Id"), str):
            raise _Failed(400, "InvalidParameter", "Client.Id is required")
        client_id = client["Id"]
        if self.sites.get(client_id) != site:
            raise _Failed(404, "ClientNotFound", f"no client with Id {client_id!r}")
        changes = {k: v for k, v in client.items() if k != "Id"}
        self._check_client(site, changes, new=False)
        updated = {**self.users[client_id], **changes}
        if not body.get("Test"):
            self.users[client_id] = updated
        return web.json_response({"Client": updated})

    async def _referral_types(self, request: web.Request, site: str) -> web.Response:
        self.require(Capability.LEADSOURCE_LIST)
        return web.json_response({"ReferralTypes": self.referral_types.get(site, [])})

    async def _staff(self, request: web.Request, site: str) -> web.Response:
        self.require(Capability.STAFF_LIST)
        staff = list(self.staff.get(site, {}).values())
        return web.json_response(_page(request, staff, "StaffMembers"))

    def _check_client(self, site: str, client: dict[str, Any], *, new: bool) -> None:
        problems = [f"{name}: unknown field" for name in sorted(set(client) - CLIENT_FIELDS)]
        for name in ("FirstName", "LastName"):
            if (new or name in client) and not _text(client.get(name)):
                problems.append(f"{name}: is required")
        referred = client.get("ReferredBy")
        if referred is not None and referred not in self.referral_types.get(site, []):
            problems.append(f"ReferredBy: {referred!r} is not a referral type of this site")
        reps = client.get("SalesReps", [])
        staff = self.staff.get(site, {})
        if not isinstance(reps, list) or not all(
            isinstance(r, dict) and r.get("Id") in staff and r.get("SalesRepNumber") in range(1, 7)
            for r in reps
        ):
            problems.append("SalesReps: each needs the Id of a staff member and a number 1-6")
        if problems:
            code = "MissingRequiredFields" if "required" in problems[0] else "InvalidParameter"
            raise _Failed(400, code, "; ".join(problems))


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _person(client: dict[str, Any]) -> str:
    email = client.get("Email")
    if _text(email):
        return str(email).strip().lower()
    return f"{client.get('FirstName', '')} {client.get('LastName', '')}".strip().lower()


def _searchable(client: dict[str, Any]) -> str:
    """What searchText matches: names, email and phones (as Mindbody's search does)."""
    keys = ("FirstName", "LastName", "Email", "MobilePhone", "HomePhone", "WorkPhone")
    return " ".join(str(client.get(key) or "") for key in keys).lower()


def _query(request: web.Request, name: str, default: str = "") -> str:
    """A query parameter by its name or as `request.<name>`, any case (as ASP.NET binds)."""
    wanted = {name.lower(), f"request.{name.lower()}"}
    return next((v for k, v in request.query.items() if k.lower() in wanted), default)


def _page(request: web.Request, items: list[dict[str, Any]], key: str) -> dict[str, Any]:
    try:
        limit = min(int(_query(request, "limit", "100")), 200)
        offset = int(_query(request, "offset", "0"))
    except ValueError:
        raise _Failed(400, "InvalidParameter", "limit and offset must be numbers") from None
    if limit < 1 or offset < 0:
        raise _Failed(400, "InvalidParameter", "limit must be 1-200, offset 0 or more")
    page = items[offset : offset + limit]
    pagination = {
        "RequestedLimit": limit,
        "RequestedOffset": offset,
        "PageSize": len(page),
        "TotalResults": len(items),
    }
    return {"PaginationResponse": pagination, key: page}


async def _json_object(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise _Failed(415, "InvalidParameter", "Content-Type must be application/json")
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise _Failed(400, "InvalidParameter", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise _Failed(400, "InvalidParameter", "the body must be a JSON object")
    return body


def main(argv: list[str] | None = None) -> None:
    parser = command_line("mindbody", "A fake Mindbody site.", 9104)
    parser.add_argument("--key-env", required=True, help="variable holding the API key")
    parser.add_argument("--username", required=True, help="the staff user's name")
    parser.add_argument("--password-env", required=True, help="variable holding its password")
    parser.add_argument("--daily-quota", type=int, default=1000, help="calls per site per day")
    parser.add_argument("--staff", action="append", default=[], metavar="SITE:EMAIL")
    parser.add_argument("--referral-type", action="append", default=[], metavar="SITE:NAME")
    args = parser.parse_args(argv)
    fake = FakeMindbody(
        secret(parser, args.key_env),
        args.username,
        secret(parser, args.password_env),
        daily_quota=args.daily_quota,
        capabilities=capabilities_of(args),
    )
    seed(args.staff, 2, fake.add_staff)
    seed(args.referral_type, 2, fake.add_lead_source)
    asyncio.run(serve(fake, args.host, args.port, "fake Mindbody site"))


if __name__ == "__main__":
    main()
