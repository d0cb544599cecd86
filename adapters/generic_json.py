"""The `generic_json` adapter: the hub's own REST+JSON partner contract.

The contract (the partner contract's "generic_json" shape), published for
partners as `schemas/generic-json.openapi.yaml`:

    PUT  {base}/clubs/{clubId}/users/{hubUuid}   JSON user -> {"id"}
    GET  {base}/clubs/{clubId}/staff[?email=]    -> [{"id","email","firstName","lastName"}]
    GET  {base}/clubs/{clubId}/lead-sources      -> [{"id","name"}]
    POST {base}/clubs/{clubId}/lead-sources      {"name"} -> {"id"}

Every request carries `Authorization: Bearer`, an `Idempotency-Key` stable
across retries, and saves carry `X-Hub-Record`; a save of a user whose
partner ID the hub holds carries it as `X-Partner-Id` (an update), one
without it is the hub's create, so that a partner (and the tests' fake) can
tell a second create from an update. This module must never send
a field the OpenAPI document does not name, and never guess at an answer it
cannot read: such an answer is a PermanentPartnerError with the body kept.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote, urlencode

import aiohttp
import orjson
import yarl

from adapters import http
from adapters.base import (
    Adapter,
    Capability,
    ClubRef,
    LeadSource,
    OutboundUser,
    PartnerConfig,
    SaveResult,
    StaffMember,
)

# (JSON name, OutboundUser attribute), in the order the user goes out.
USER_FIELDS: tuple[tuple[str, str], ...] = (
    ("userType", "user_type"),
    ("status", "status"),
    ("firstName", "firstname"),
    ("lastName", "lastname"),
    ("birthDate", "birthdate"),
    ("gender", "gender"),
    ("address1", "address1"),
    ("address2", "address2"),
    ("city", "city"),
    ("zipCode", "zipcode"),
    ("state", "state"),
    ("country", "country"),
    ("mobile", "mobile"),
    ("email", "email"),
    ("homePhone", "home_phone"),
    ("workPhone", "work_phone"),
    ("company", "company"),
    ("ownerId", "owner_id"),
    ("leadSourceId", "lead_source_id"),
    ("trialStart", "trial_start"),
    ("trialEnd", "trial_end"),
)


def user_json(user: OutboundUser) -> dict[str, str]:
    """The JSON user of the contract: camelCase, fields without a value left out."""
    fields = ((name, getattr(user, attribute)) for name, attribute in USER_FIELDS)
    return {name: value for name, value in fields if value is not None}


def _segment(value: str) -> str:
    """One path segment, every reserved character escaped (a club ID may hold '/')."""
    return quote(value, safe="")


class GenericJsonAdapter(Adapter):
    """Every capability, over the hub's own REST+JSON contract."""

    name = "generic_json"
    supported = frozenset(Capability)

    def __init__(self, config: PartnerConfig, session: aiohttp.ClientSession) -> None:
        super().__init__(config, session)
        self._token = config.secret("key_env")
        self._timeout = http.timeout_of(config.name, config.settings)
        self._base = http.base_url(config.name, config.url)

    async def save_user(self, club: ClubRef, user: OutboundUser) -> SaveResult:
        path = f"/clubs/{_segment(club.club_id)}/users/{_segment(str(user.hub_uuid))}"
        answer = await self._call(
            "PUT",
            path,
            orjson.dumps(user_json(user)),
            idempotency_key=user.idempotency_key or None,
            record=str(user.hub_uuid),
            partner_id=None if user.partner_id is None else _segment(user.partner_id),
        )
        return SaveResult(partner_id=answer.id_of(answer.object(), "id"))

    async def list_staff(self, club: ClubRef) -> list[StaffMember]:
        return await self._staff(f"/clubs/{_segment(club.club_id)}/staff")

    async def find_staff_by_email(self, club: ClubRef, email: str) -> list[StaffMember]:
        query = urlencode({"email": email}, quote_via=quote)
        return await self._staff(f"/clubs/{_segment(club.club_id)}/staff?{query}")

    async def list_lead_sources(self, club: ClubRef) -> list[LeadSource]:
        answer = await self._call("GET", f"/clubs/{_segment(club.club_id)}/lead-sources")
        return [
            LeadSource(id=answer.id_of(item, "id"), name=answer.text(item, "name"))
            for item in answer.objects()
        ]

    async def create_lead_source(self, club: ClubRef, name: str) -> LeadSource:
        path = f"/clubs/{_segment(club.club_id)}/lead-sources"
        answer = await self._call("POST", path, orjson.dumps({"name": name}))
        return LeadSource(id=answer.id_of(answer.object(), "id"), name=name)

    async def _staff(self, path: str) -> list[StaffMember]:
        answer = await self._call("GET", path)
        return [
            StaffMember(
                id=answer.id_of(item, "id"),
                email=answer.text(item, "email"),
                first_name=answer.text(item, "firstName"),
                last_name=answer.text(item, "lastName"),
            )
            for item in answer.objects()
        ]

    async def _call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        idempotency_key: str | None = None,
        record: str | None = None,
        partner_id: str | None = None,
    ) -> http.JsonAnswer:
        """The JSON answer of one request (`path` already escaped)."""
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            # Derived from the request itself, so a retried request repeats its key.
            "Idempotency-Key": idempotency_key or _stable_key(method, path, body),
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        if record is not None:
            headers["X-Hub-Record"] = record
        if partner_id is not None:
            headers["X-Partner-Id"] = partner_id
        what = f"{self.config.name}: {method} {path}"
        status, raw = await http.request(
            self.session,
            method,
            yarl.URL(self._base + path, encoded=True),
            what=what,
            headers=headers,
            body=body,
            total=self._timeout,
            budget=self.budget,
        )
        return http.JsonAnswer.parse(what, status, raw)


def _stable_key(method: str, path: str, body: bytes | None) -> str:
    digest = hashlib.sha256(f"{method} {path}\n".encode() + (body or b""))
    return digest.hexdigest()
