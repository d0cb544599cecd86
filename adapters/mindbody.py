"""The `mindbody` adapter: clients of a Mindbody site, over the Public API v6.

Shaped after Mindbody's public documentation of the Public API v6
(developers.mindbodyonline.com/PublicDocumentation/V6, "User Tokens" and the
Client and Staff resources) and its published models: AddClientRequest,
UpdateClientRequest, GetClientsResponse, Staff, GetClientReferralTypesResponse,
IssueRequest/IssueResponse, SalesRep and ApiError. JSON under `{url}` (that is
Mindbody's `https://api.mindbodyonline.com/public/v6`):

    (token)             POST {url}/usertoken/issue     {"Username","Password"} -> AccessToken
    save_user (create)  GET  {url}/client/clients?searchText=<email>&limit=200   re-create check
                        POST {url}/client/addclient    the client -> {"Client": {"Id"}}
    save_user (update)  POST {url}/client/updateclient {"Client": {"Id",...}, "CrossRegionalUpdate"}
    list_staff          GET  {url}/staff/staff?limit=200&offset=   every page
    list_lead_sources   GET  {url}/client/clientreferraltypes   -> {"ReferralTypes": [names]}

Every call carries `API-Key` (from the variable `settings.key_env`) and
`SiteId` (`ClubRef.client_id`: the Mindbody site); every call but the issue
carries a staff user token as `Authorization: Bearer`, issued per site for
`settings.username` (password from the variable `settings.password_env`),
kept in memory, and issued once more when a call answers 401.

The quirk, a daily call quota: this adapter counts its own calls (token
issues and lookups included) per site per UTC day and stops short of
`settings.daily_quota` (default 1000, Mindbody's free daily calls), keeping
`settings.quota_reserve` calls (default 1%, at least 1) unused: past that, a
TransientPartnerError with `retry_after` = seconds until the next UTC day,
and no call. The count is kept in the adapter's budget (`Budget.take_call`),
which the hub shares between all its processes and keeps across restarts;
calls made elsewhere (another app on the key) are not in it: a 429 from
Mindbody is transient too, honouring Retry-After, else until the next UTC
day (and then the site counts as used up for the day).

What a Mindbody client takes, and what this adapter therefore does:

- Lead sources: the site's referral types, read-only (no create), names
  only: LeadSource(id=name, name=name). The matched name goes as
  `ReferredBy`; an unmatched name is not sent (a note).
- Owner: a Mindbody client has no owner; what the docs give is a client's
  sales reps (AddClient's `SalesReps`, [{"Id": staff Id, "SalesRepNumber":
  1-6}]). The owner goes as sales rep number `settings.sales_rep_number`
  (default 1); an owner ID that is not a number is not sent (a note).
- `ClubRef.club_id` is the location: sent as `HomeLocation` when it is a
  number (a note otherwise). IsProspect from the user type, Active from the
  status, Gender M/F as Male/Female, BirthDate as a date-time. company and
  the trial dates have no field: not sent (a note each).
- No idempotency key: before an add, the site's clients are searched by
  email, and one with the same email, first and last name (any case) is
  updated instead, so that a create the hub repeats (its answer lost) is not
  a second client. Without an email there is nothing to search by: added (a
  note). Updates change only the fields sent, on this site only
  (`CrossRegionalUpdate: false`).

Not covered: OAuth tokens and token renew/revoke; staff by location (the
staff list is the site's); a site with more than 10,000 staff (50 pages of
200: a permanent error); more than the first 200 matches of the client
search; a client whose Id (RSSID) is changed at Mindbody (the update then
answers 404, a permanent error); custom fields, client indexes, cards,
contracts. Assumed where the pages are thin: the query parameters are sent
as `searchText`, `limit` and `offset` (the SDK spells them
`request.searchText` ...), the token with a "Bearer " prefix, and the quota
per site (Mindbody's pages speak of calls per API key per day). This module
must never call Mindbody once its own count says the day's quota is reached.
"""

from __future__ import annotations

import asyncio
import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson
import yarl

from adapters import http
from adapters.base import (
    Adapter,
    AdapterConfigError,
    Budget,
    Capability,
    ClubRef,
    LeadSource,
    LocalBudget,
    OutboundUser,
    PartnerConfig,
    PermanentPartnerError,
    SaveResult,
    StaffMember,
    TransientPartnerError,
)

DEFAULT_DAILY_QUOTA = 1000
PAGE = 200  # the most a Mindbody list answers at once
MAX_PAGES = 50
KINDS = frozenset({"PROSPECT", "MEMBER", "FORMER_MEMBER"})
# (JSON name, OutboundUser attribute) of the fields sent as they are, in the order sent.
TEXT_FIELDS: tuple[tuple[str, str], ...] = (
    ("FirstName", "firstname"),
    ("LastName", "lastname"),
    ("Email", "email"),
    ("AddressLine1", "address1"),
    ("AddressLine2", "address2"),
    ("City", "city"),
    ("State", "state"),
    ("PostalCode", "zipcode"),
    ("Country", "country"),
    ("MobilePhone", "mobile"),
    ("HomePhone", "home_phone"),
    ("WorkPhone", "work_phone"),
)
# (OutboundUser attribute, the hub's name) of what a Mindbody client has no field for.
NOT_SENT = (("company", "company"), ("trial_start", "trialStart"), ("trial_end", "trialEnd"))
_GENDERS = {"M": "Male", "F": "Female"}
_NUMBER = re.compile(r"-?[0-9]{1,9}")


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def until_tomorrow(now: datetime.datetime) -> float:
    """Seconds from `now` to the next midnight UTC (at least 1)."""
    tomorrow = datetime.datetime.combine(
        now.astimezone(datetime.UTC).date() + datetime.timedelta(days=1),
        datetime.time(),
        datetime.UTC,
    )
    return max(1.0, (tomorrow - now).total_seconds())


def _number(value: str) -> int | None:
    return int(value) if _NUMBER.fullmatch(value.strip()) else None


def client_json(
    user: OutboundUser, club: ClubRef, sales_rep_number: int = 1
) -> tuple[dict[str, Any], list[str]]:
    """The Mindbody client for `user`, and a note for each thing not sent."""
    client: dict[str, Any] = {
        name: getattr(user, attr) for name, attr in TEXT_FIELDS if getattr(user, attr) is not None
    }
    notes: list[str] = []
    if user.birthdate is not None:
        client["BirthDate"] = f"{user.birthdate}T00:00:00"
    if user.gender is not None:
        if user.gender in _GENDERS:
            client["Gender"] = _GENDERS[user.gender]
        else:
            notes.append(f"Gender {user.gender!r} not sent: Mindbody takes Male or Female")
    client["IsProspect"] = user.user_type == "PROSPECT"
    client["Active"] = user.status == "ACTIVE"
    if user.lead_source_id:
        client["ReferredBy"] = user.lead_source_id
    elif user.lead_source_name:
        notes.append(
            f"lead source {user.lead_source_name!r} not sent: not a referral type of the site"
        )
    if user.owner_id is not None:
        staff_id = _number(user.owner_id)
        if staff_id is None:
            notes.append(f"owner {user.owner_id!r} not sent: a Mindbody staff Id is a number")
        else:
            client["SalesReps"] = [{"Id": staff_id, "SalesRepNumber": sales_rep_number}]
    location = _number(club.club_id)
    if location is None:
        notes.append(f"HomeLocation not sent: the location ID {club.club_id!r} is not a number")
    else:
        client["HomeLocation"] = {"Id": location}
    notes += [
        f"{name} not sent: a Mindbody client has no such field"
        for attr, name in NOT_SENT
        if getattr(user, attr) is not None
    ]
    return client, notes


def explain(body: bytes) -> str | None:
    """'Code: Message' from Mindbody's {"Error": {"Message", "Code"}}, or None."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = data.get("Error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None
    parts = [v for v in (error.get("Code"), error.get("Message")) if isinstance(v, str) and v]
    return ": ".join(parts) or None


@dataclass(slots=True)
class DailyQuota:
    """Calls per site per UTC day, counted in `budget`; `take` refuses once `limit - reserve`
    are made."""

    limit: int
    reserve: int
    budget: Budget = field(default_factory=LocalBudget)
    now: Callable[[], datetime.datetime] = utcnow

    def _day(self) -> datetime.date:
        return self.now().astimezone(datetime.UTC).date()

    async def used(self, site: str) -> int:
        return await self.budget.calls(site, self._day())

    async def take(self, site: str, what: str) -> None:
        """Count one call to `site`, or TransientPartnerError (until tomorrow) without it."""
        now = self.now()
        if not await self.budget.take_call(site, self._day(), self.limit - self.reserve):
            used = await self.used(site)
            raise TransientPartnerError(
                f"{what}: not sent, {used} of the site's {self.limit} calls today are made"
                f" (keeping {self.reserve} in reserve)",
                retry_after=until_tomorrow(now),
            )

    async def use_up(self, site: str) -> None:
        await self.budget.use_up(site, self._day(), self.limit)


class MindbodyAdapter(Adapter):
    """Clients saved, staff and referral types listed, within the day's call quota."""

    name = "mindbody"
    supported = frozenset({Capability.USER_SAVE, Capability.STAFF_LIST, Capability.LEADSOURCE_LIST})

    def __init__(self, config: PartnerConfig, session: aiohttp.ClientSession) -> None:
        super().__init__(config, session)
        self._api_key = config.secret("key_env")
        username = config.settings.get("username")
        if not isinstance(username, str) or not username.strip():
            raise AdapterConfigError(f"provider {config.name!r}: settings.username is not given")
        self._username = username
        self._password = config.secret("password_env")
        self._timeout = http.timeout_of(config.name, config.settings)
        self._base = http.base_url(config.name, config.url)
        limit = _whole(config, "daily_quota", DEFAULT_DAILY_QUOTA, 1)
        reserve = _whole(config, "quota_reserve", max(1, limit // 100), 0)
        if reserve >= limit:
            raise AdapterConfigError(
                f"provider {config.name!r}: settings.quota_reserve ({reserve}) must be below"
                f" settings.daily_quota ({limit})"
            )
        self._sales_rep = _whole(config, "sales_rep_number", 1, 1, 6)
        self.quota = DailyQuota(limit, reserve, self.budget)
        self._tokens: dict[str, str] = {}  # site -> staff user token
        self._issuing = asyncio.Lock()

    def check_subscription(self, receives: frozenset[str]) -> None:
        if unknown := receives - KINDS:
            raise AdapterConfigError(
                f"provider {self.config.name!r}: Mindbody (adapter {self.name!r}) takes clients"
                f" ({', '.join(sorted(KINDS))}), not {', '.join(sorted(unknown))}"
            )

    async def save_user(self, club: ClubRef, user: OutboundUser) -> SaveResult:
        site = club.client_id
        client, notes = client_json(user, club, self._sales_rep)
        client_id = user.partner_id
        if client_id is None:
            client_id, found = await self._existing(site, user)
            notes += found
        if client_id is None:
            answer = await self._call(site, "POST", "/client/addclient", client)
        else:
            body = {"Client": {"Id": client_id, **client}, "CrossRegionalUpdate": False}
            answer = await self._call(site, "POST", "/client/updateclient", body)
        saved = answer.id_of(answer.member("Client"), "Id")
        return SaveResult(partner_id=saved, notes=tuple(notes))

    async def list_staff(self, club: ClubRef) -> list[StaffMember]:
        staff: list[StaffMember] = []
        for page in range(MAX_PAGES):
            query = urlencode({"limit": PAGE, "offset": page * PAGE})
            answer = await self._call(club.client_id, "GET", f"/staff/staff?{query}")
            items = answer.items("StaffMembers")
            staff += [
                StaffMember(
                    id=answer.id_of(item, "Id"),
                    email=answer.text(item, "Email"),
                    first_name=answer.text(item, "FirstName"),
                    last_name=answer.text(item, "LastName"),
                )
                for item in items
            ]
            if len(items) < PAGE or len(staff) >= answer.total(len(staff) + 1):
                return staff
        raise PermanentPartnerError(f"{self.config.name}: more than {len(staff)} staff members")

    async def list_lead_sources(self, club: ClubRef) -> list[LeadSource]:
        answer = await self._call(club.client_id, "GET", "/client/clientreferraltypes")
        return [LeadSource(id=name, name=name) for name in answer.names("ReferralTypes")]

    async def _existing(self, site: str, user: OutboundUser) -> tuple[str | None, list[str]]:
        """The Id of the site's client that is this user (same email and name), if any."""
        if not user.email:
            return None, ["not searched for before the add: no email to search by"]
        query = urlencode({"searchText": user.email, "limit": PAGE}, quote_via=quote)
        answer = await self._call(site, "GET", f"/client/clients?{query}")
        wanted = [_folded(v) for v in (user.email, user.firstname, user.lastname)]
        same = [
            client
            for client in answer.items("Clients")
            if [_folded(client.get(k)) for k in ("Email", "FirstName", "LastName")] == wanted
        ]
        if not same:
            return None, []
        found = answer.id_of(same[0], "Id")
        notes = [f"client {found} has this email and name: updated, not added again"]
        if len(same) > 1:
            notes.append(f"{len(same)} clients have this email and name; the first was updated")
        return found, notes

    async def _call(
        self, site: str, method: str, path: str, body: dict[str, Any] | None = None
    ) -> _Answer:
        """One authorised call; on a 401, one new token and one more try."""
        token = await self._token(site)
        try:
            return await self._send(site, method, path, body, token)
        except PermanentPartnerError as exc:
            if exc.status != 401:
                raise
        if self._tokens.get(site) == token:  # not replaced meanwhile by another call
            del self._tokens[site]
        return await self._send(site, method, path, body, await self._token(site))

    async def _token(self, site: str) -> str:
        if (token := self._tokens.get(site)) is not None:
            return token
        async with self._issuing:  # one issue at a time, not one per waiting call
            if (token := self._tokens.get(site)) is None:
                body = {"Username": self._username, "Password": self._password}
                answer = await self._send(site, "POST", "/usertoken/issue", body, None)
                token = answer.text(answer.object(), "AccessToken")
                if not token:
                    raise answer.nonsense("the answer has no AccessToken")
                self._tokens[site] = token
            return token

    async def _send(
        self, site: str, method: str, path: str, body: dict[str, Any] | None, token: str | None
    ) -> _Answer:
        """One request within the quota (`path` already escaped), its JSON answer read."""
        what = f"{self.config.name}: {method} {path.partition('?')[0]}"  # no emails in logs
        if not site.strip():
            raise PermanentPartnerError(f"{what}: the club has no Mindbody site ID")
        await self.quota.take(site, what)
        headers = {"API-Key": self._api_key, "SiteId": site, "Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        url = yarl.URL(self._base + path, encoded=True)
        try:
            status, raw = await http.request(
                self.session, method, url, what=what, headers=headers, body=data,
                total=self._timeout, explain=explain, budget=self.budget,
            )  # fmt: skip
        except TransientPartnerError as exc:
            if exc.status != 429 or exc.retry_after is not None:
                raise
            # The day's quota, used up elsewhere: nothing gets through before tomorrow.
            await self.quota.use_up(site)
            raise TransientPartnerError(
                f"{exc.message} (the day's call quota; retried after midnight UTC)",
                status=429,
                answer=exc.answer,
                retry_after=until_tomorrow(self.quota.now()),
            ) from exc
        return _Answer.parse(what, status, raw)


def _folded(value: Any) -> str:
    return value.strip().casefold() if isinstance(value, str) else ""


def _whole(config: PartnerConfig, key: str, default: int, low: int, high: int | None = None) -> int:
    """`settings[key]`, a whole number from `low` to `high`, or AdapterConfigError."""
    value = config.settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise AdapterConfigError(
            f"provider {config.name!r}: settings.{key} must be a whole number of {low} or more"
        )
    if high is not None and value > high:
        raise AdapterConfigError(
            f"provider {config.name!r}: settings.{key} must be from {low} to {high}"
        )
    return value


@dataclass(slots=True)
class _Answer(http.JsonAnswer):
    """Mindbody's answer, parsed."""

    def member(self, key: str) -> dict[str, Any]:
        value = self.object().get(key)
        if not isinstance(value, dict):
            raise self.nonsense(f"{key} is missing or not an object")
        return value

    def items(self, key: str) -> list[dict[str, Any]]:
        value = self.object().get(key)
        if not isinstance(value, list) or not all(isinstance(i, dict) for i in value):
            raise self.nonsense(f"{key} is missing or not a list of objects")
        return value

    def names(self, key: str) -> list[str]:
        value = self.object().get(key)
        if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
            raise self.nonsense(f"{key} is missing or not a list of names")
        return [name for name in value if name.strip()]

    def total(self, default: int) -> int:
        paging = self.object().get("PaginationResponse")
        total = paging.get("TotalResults") if isinstance(paging, dict) else None
        return total if isinstance(total, int) and not isinstance(total, bool) else default
