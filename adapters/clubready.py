"""The `clubready` adapter: ClubReady's public REST API (JSON), prospects only.

Shaped after ClubReady's published service metadata (the ServiceStack pages
under `clubready.com/api/current/json/metadata?op=...`): `CreateProspectRequest`
and `UserAccountRequest`. The settings' `url` is the API's base, e.g.
`https://www.clubready.com/api/current`.

    save_user (create)   GET  {url}/users/find?Email=    then, if nobody has the email,
                         POST {url}/users/prospect       JSON prospect -> {"UserId", "Success"}
    save_user (update)   PUT  {url}/users/{UserId}       JSON user -> {"Success", "Message"}
    list_staff           GET  {url}/staff                -> [{"UserId", "Email", "FirstName", ...}]
    list_lead_sources    GET  {url}/club/referral-types  -> [{"ReferralTypeId", "Name"}]

Before a create, the store's users with the email are looked up: the one
whose ExternalId is the hub UUID (a create whose answer was lost), else the
only one with that email (a person the club made itself), is updated
instead; several, none the hub's, is a permanent error, not a guess.

ClubReady's documentation marks Email as required on the create, so a
create of a user without one (none, or blank) is a PermanentPartnerError
before any call: no lookup, no POST. An update (the UserId known from an
earlier save) of a user without an email still goes out, without `Email`:
the update body carries only the fields the user has, and the update call
does not need the email to find the person (the UserId is in the path).

Every call carries `ApiKey` (the secret named by `settings.key_env`) and
`StoreId` (ClubRef.club_id) in its query string; ClubRef.client_id is the
chain (ClubReady's `ChainId`) and is not sent, as the API takes "StoreId OR
ChainId" and every call here is about one store. The key is never put in an
error message.

The quirk: ClubReady answers carry `Success` and `Message`, so a 200 with
`"Success": false` is a failure, never a delivery. Its message decides:
"try again", "timeout", "busy", "temporarily" and the like are transient,
anything else (missing or invalid fields, a duplicate, an unknown store or
referral type) is permanent; the answer is kept either way.

What the documentation gives and this module follows: the create's and the
update's parameter names (they differ: `Phone`/`Address` on create,
`HomePhone`/`Address1` on update), `ExternalId` (kept by ClubReady as
ExternalUserId; here the hub UUID), `ReferralTypeId` and `AssignToId` on
create only, and the `Success`/`Message` base of every answer. What it
assumes, not having found it documented: the create's answer
`{"UserId", "Success", "EmailSent", "PackageAdded"}` (as a public client
reads it), the routes and list shapes of `/users/find` and `/staff` (as
public clients call them) and `/club/referral-types` (a guess), and the
update's answer being the bare `{"Success", "Message"}`, that an update
without `Email` is taken and leaves the email ClubReady has alone, and that the
parameters, which the metadata lists as query parameters, may be sent as a
JSON body (ServiceStack binds a request's DTO from either); only `ApiKey` and
`StoreId` go in the query here.

What it does not do: members (ClubReady's create makes prospects; members
come from selling a package), a prospect without an email (see above), an
owner or lead-source change on update (the update call has no AssignToId or
ReferralTypeId), creating referral types (no documented create: no
`leadsource.create`), finding staff by email (no documented filter: the hub
matches against `staff.list`). Fields ClubReady has no place for are dropped
and said so in SaveResult.notes.

This module must never retry, sleep or log, and never guess at an answer it
cannot read: such an answer is a PermanentPartnerError with the body kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson
import yarl

from adapters import http
from adapters.base import (
    Adapter,
    AdapterConfigError,
    Capability,
    ClubRef,
    LeadSource,
    OutboundUser,
    PartnerConfig,
    PartnerError,
    PermanentPartnerError,
    SaveResult,
    StaffMember,
    TransientPartnerError,
)

SETTINGS = frozenset({"key_env", "timeout"})
REFERRAL_TYPES = "/club/referral-types"

# (ClubReady name, OutboundUser attribute), in the order they go out.
CREATE_FIELDS: tuple[tuple[str, str], ...] = (
    ("FirstName", "firstname"),
    ("LastName", "lastname"),
    ("Email", "email"),
    ("Gender", "gender"),
    ("DateOfBirth", "birthdate"),
    ("Address", "address1"),
    ("City", "city"),
    ("State", "state"),
    ("Zip", "zipcode"),
    ("Phone", "home_phone"),
    ("WorkPhone", "work_phone"),
    ("CellPhone", "mobile"),
)
UPDATE_FIELDS: tuple[tuple[str, str], ...] = (
    ("FirstName", "firstname"),
    ("LastName", "lastname"),
    ("Email", "email"),
    ("Gender", "gender"),
    ("DateOfBirth", "birthdate"),
    ("Address1", "address1"),
    ("City", "city"),
    ("State", "state"),
    ("Zip", "zipcode"),
    ("HomePhone", "home_phone"),
    ("CellPhone", "mobile"),
)
# (Connector name, OutboundUser attribute) ClubReady has no place for at all.
NEVER_SENT: tuple[tuple[str, str], ...] = (
    ("address2", "address2"),
    ("country", "country"),
    ("company", "company"),
    ("trialStart", "trial_start"),
    ("trialEnd", "trial_end"),
)
# The update call has none of these (UserAccountRequest).
NOT_ON_UPDATE: tuple[tuple[str, str, str], ...] = (
    ("workPhone", "work_phone", "WorkPhone"),
    ("ownerID", "owner_id", "AssignToId"),
    ("leadSource", "lead_source_id", "ReferralTypeId"),
)
# Words in a `"Success": false` message that mean "not now" rather than "never".
TRANSIENT_WORDS = (
    "try again",
    "timeout",
    "timed out",
    "busy",
    "temporarily",
    "temporary",
    "unavailable",
    "deadlock",
)


def is_transient_message(message: str) -> bool:
    """Whether a `"Success": false` message says to come back later."""
    text = message.casefold()
    return any(word in text for word in TRANSIENT_WORDS)


def create_body(user: OutboundUser) -> tuple[dict[str, Any], list[str]]:
    """The JSON of `POST /users/prospect` for `user`, and notes on what was left out."""
    body: dict[str, Any] = _fields(user, CREATE_FIELDS)
    notes: list[str] = []
    for name, attribute in (("AssignToId", "owner_id"), ("ReferralTypeId", "lead_source_id")):
        value = getattr(user, attribute)
        if value is None:
            continue
        if value.strip().isdigit():
            body[name] = int(value)
        else:
            notes.append(f"{name} not sent: {value!r} is not a ClubReady ID")
    body["SendEmail"] = False  # required; the club, not the hub, decides on welcome mail
    body["ExternalId"] = str(user.hub_uuid)
    return body, notes


def update_body(user: OutboundUser) -> tuple[dict[str, Any], list[str]]:
    """The JSON of `PUT /users/{UserId}` for `user`, and notes on what was left out."""
    notes = [
        f"{theirs} not sent: ClubReady's user update has no {name}"
        for theirs, attribute, name in NOT_ON_UPDATE
        if getattr(user, attribute) is not None
    ]
    return _fields(user, UPDATE_FIELDS), notes


def dropped(user: OutboundUser) -> list[str]:
    """Notes on the user's fields that ClubReady has no place for."""
    notes = [
        f"{theirs} not sent: ClubReady's prospect has no such field"
        for theirs, attribute in NEVER_SENT
        if getattr(user, attribute) is not None
    ]
    if user.status != "ACTIVE":
        notes.append(f"userStatus {user.status} not sent: ClubReady's prospect has no status")
    return notes


def _fields(user: OutboundUser, names: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    fields = ((name, getattr(user, attribute)) for name, attribute in names)
    return {name: value for name, value in fields if value is not None}


def explain(body: bytes) -> str | None:
    """ClubReady's `Message` (or ServiceStack's ResponseStatus.Message) of an error answer."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    status = data.get("ResponseStatus")
    message = status.get("Message") if isinstance(status, dict) else data.get("Message")
    return (message.strip() or None) if isinstance(message, str) else None


class ClubReadyAdapter(Adapter):
    """Prospects, staff and referral types of one ClubReady store."""

    name = "clubready"
    title = "ClubReady"
    prospects_only = True
    supported = frozenset({Capability.USER_SAVE, Capability.STAFF_LIST, Capability.LEADSOURCE_LIST})

    def __init__(self, config: PartnerConfig, session: aiohttp.ClientSession) -> None:
        super().__init__(config, session)
        unknown = set(config.settings) - SETTINGS
        if unknown:
            raise AdapterConfigError(
                f"provider {config.name!r}: adapter {self.name!r} has no setting "
                + ", ".join(sorted(unknown))
            )
        self._key = config.secret("key_env")
        self._timeout = http.timeout_of(config.name, config.settings)
        self._base = http.base_url(config.name, config.url)

    async def save_user(self, club: ClubRef, user: OutboundUser) -> SaveResult:
        self.require_prospect(user)
        notes = dropped(user)
        user_id = user.partner_id
        if user_id is None:
            if user.email is None or not user.email.strip():
                raise PermanentPartnerError(
                    f"{self.config.name}: ClubReady needs an email to create a prospect;"
                    " the record has none"
                )
            user_id = await self._already_there(club, user, user.email)
            if user_id is not None:
                notes.append(f"UserId {user_id} found by email: updated, not created again")
        if user_id is None:
            body, more = create_body(user)
            answer = await self._call("POST", "/users/prospect", club, body=body)
            return SaveResult(answer.id_of(answer.succeeded(), "UserId"), tuple(notes + more))
        body, more = update_body(user)
        answer = await self._call("PUT", f"/users/{quote(user_id, safe='')}", club, body=body)
        answer.succeeded()
        return SaveResult(user_id, tuple(notes + more))

    async def list_staff(self, club: ClubRef) -> list[StaffMember]:
        answer = await self._call("GET", "/staff", club)
        return [
            StaffMember(
                id=answer.id_of(item, "UserId"),
                email=answer.text(item, "Email"),
                first_name=answer.text(item, "FirstName"),
                last_name=answer.text(item, "LastName"),
            )
            for item in answer.objects()
        ]

    async def list_lead_sources(self, club: ClubRef) -> list[LeadSource]:
        answer = await self._call("GET", REFERRAL_TYPES, club)
        return [
            LeadSource(id=answer.id_of(item, "ReferralTypeId"), name=answer.text(item, "Name"))
            for item in answer.objects()
        ]

    async def _already_there(self, club: ClubRef, user: OutboundUser, email: str) -> str | None:
        """The UserId of this person (with `email`) at the store, if a create (maybe ours,
        its answer lost) or the club already made them; None if nobody there has the email."""
        answer = await self._call("GET", "/users/find", club, query={"Email": email})
        wanted = email.strip().casefold()
        found = [
            item
            for item in answer.objects()
            if answer.text(item, "Email").strip().casefold() == wanted
        ]
        ours = [item for item in found if item.get("ExternalId") == str(user.hub_uuid)]
        if ours or len(found) == 1:
            return answer.id_of((ours or found)[0], "UserId")
        if found:
            raise PermanentPartnerError(
                f"{answer.what}: {len(found)} users of store {club.club_id} have this email and"
                " none is the hub's: not guessing which to update",
                status=answer.status,
                answer=answer.raw.decode("utf-8", "replace"),
            )
        return None

    async def _call(
        self,
        method: str,
        path: str,
        club: ClubRef,
        *,
        query: Mapping[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> _Answer:
        """The JSON answer of one request (`path` already escaped), `Success: false` raised."""
        params = {"ApiKey": self._key, "StoreId": club.club_id, **(query or {})}
        url = yarl.URL(f"{self._base}{path}?{urlencode(params, quote_via=quote)}", encoded=True)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = orjson.dumps(body)
        # The query holds the key: the message names the path only.
        what = f"{self.config.name}: {method} {path}"
        status, raw = await http.request(
            self.session,
            method,
            url,
            what=what,
            headers=headers,
            body=data,
            total=self._timeout,
            explain=explain,
            budget=self.budget,
        )
        answer = _Answer.parse(what, status, raw)
        answer.raise_if_refused()
        return answer


@dataclass(slots=True)
class _Answer(http.JsonAnswer):
    """ClubReady's answer, parsed."""

    def raise_if_refused(self) -> None:
        """A 2xx with `"Success": false` is ClubReady saying no: transient or permanent."""
        if not isinstance(self.data, dict) or self.data.get("Success") is not False:
            return
        message = self.data.get("Message")
        text = message.strip() if isinstance(message, str) else ""
        error: PartnerError
        answer = self.raw.decode("utf-8", "replace")
        refused = f"{self.what} refused (Success false): {text or 'no message'}"
        if is_transient_message(text):
            error = TransientPartnerError(refused, status=self.status, answer=answer)
        else:
            error = PermanentPartnerError(refused, status=self.status, answer=answer)
        raise error

    def succeeded(self) -> dict[str, Any]:
        """The answer object, which must say `"Success": true`."""
        if not isinstance(self.data, dict):
            raise self.nonsense("the answer is not a JSON object")
        if self.data.get("Success") is not True:
            raise self.nonsense('the answer has no "Success": true')
        return self.data

    def id_of(self, item: dict[str, Any], key: str) -> str:
        value = item.get(key)
        # ClubReady's IDs are integers; the hub keeps every ID as text.
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return str(value)
        if isinstance(value, str) and value.strip().isdigit():
            return value.strip()
        raise self.nonsense(f"{key} is missing or not an ID")
