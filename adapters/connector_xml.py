"""The `connector_xml` adapter: a partner that speaks the Connector API itself.

Such a partner (InTouch, or another hub) knows the hub as one of its
providers: `settings.identifier` is the hub's provider identifier there and
`settings.key_env` names the key sent as `Authorization: Bearer`.

    save_user           POST {url}/user        <user>, recordID = the hub UUID
    list_staff          GET  {url}/staff?provider=&client_id=&club_id=   <staffList>
    list_lead_sources   GET  {url}/leadsource?provider=&client_id=&club_id=   <leadSources>
    create_lead_source  POST {url}/leadsource  <leadSource>, recordID = slug of the name

The recordID of a saved user is the hub UUID, so the partner's UUID for it
never changes and a repeated save is an update there. A save of a user whose
partner UUID the hub holds also carries it as `X-Partner-Id` (a header the
Connector API does not read): a save without it is the hub's create, so that
a second create can be told from an update (the tests' fake counts on it). Lead sources created
here get the slug of their name as recordID: names equal but for case or
punctuation ("Walk in", "walk-in") are one lead source at the partner.

Documents are built with lxml (which escapes every value) and answers are
read with the hub's hardened parser (`hub.connector.xmlsafe`: no DTD, no
entities, no network). This module must never build XML by pasting strings,
nor parse an answer with a parser of its own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import aiohttp
import yarl
from lxml import etree

from adapters import http
from adapters.base import (
    Adapter,
    AdapterConfigError,
    Capability,
    ClubRef,
    LeadSource,
    OutboundUser,
    PartnerConfig,
    PermanentPartnerError,
    SaveResult,
    StaffMember,
)
from hub.connector import xmlsafe
from hub.errors import InvalidDocument

# (element, OutboundUser attribute) in the order of the Connector's rule tables and XSDs.
USER_INFO: tuple[tuple[str, str], ...] = (
    ("firstname", "firstname"),
    ("lastname", "lastname"),
    ("birthdate", "birthdate"),
    ("gender", "gender"),
    ("userStatus", "status"),
    ("userType", "user_type"),
    ("address1", "address1"),
    ("address2", "address2"),
    ("city", "city"),
    ("zipcode", "zipcode"),
    ("state", "state"),
    ("country", "country"),
    ("mobile", "mobile"),
    ("email", "email"),
    ("homePhone", "home_phone"),
    ("workPhone", "work_phone"),
    ("company", "company"),
)
XML = "application/xml"
_RECORD_ID_MAX = 64  # the Connector's limit on providerInfo/recordID


def lead_source_record_id(name: str) -> str:
    """A stable recordID for a lead source: its slug (lowercase, runs of anything but
    letters and digits turned into one '-'), with a hash of the name when that is
    empty or longer than the Connector allows."""
    slug = re.sub(r"[\W_]+", "-", name.strip().lower()).strip("-")
    if slug and len(slug) <= _RECORD_ID_MAX:
        return slug
    digest = hashlib.sha256(name.strip().lower().encode()).hexdigest()[:12]
    if not slug:
        return f"ls-{digest}"
    return f"{slug[: _RECORD_ID_MAX - len(digest) - 1].rstrip('-')}-{digest}"


def user_document(identifier: str, club: ClubRef, user: OutboundUser) -> bytes:
    """The `<user>` document that saves `user` (ValueError for text XML cannot carry)."""
    root = etree.Element("user")
    _provider_info(root, identifier, club, str(user.hub_uuid))
    _section(root, "userInfo", [(tag, getattr(user, attr)) for tag, attr in USER_INFO])
    _section(
        root,
        "leadInfo",
        [
            ("leadSource", user.lead_source_id or user.lead_source_name),
            ("ownerID", user.owner_id),
            ("trialStart", user.trial_start),
            ("trialEnd", user.trial_end),
        ],
    )
    return _serialise(root)


def lead_source_document(identifier: str, club: ClubRef, record_id: str, name: str) -> bytes:
    root = etree.Element("leadSource")
    _provider_info(root, identifier, club, record_id)
    _section(root, "leadInfo", [("name", name), ("active", "true")])
    return _serialise(root)


def _provider_info(root: etree._Element, identifier: str, club: ClubRef, record_id: str) -> None:
    _section(
        root,
        "providerInfo",
        [
            ("identifier", identifier),
            ("clientID", club.client_id),
            ("clubID", club.club_id),
            ("recordID", record_id),
        ],
    )


def _section(root: etree._Element, name: str, fields: list[tuple[str, str | None]]) -> None:
    present = [(tag, value) for tag, value in fields if value is not None]
    if present:
        section = etree.SubElement(root, name)
        for tag, value in present:
            etree.SubElement(section, tag).text = value


def _serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True, pretty_print=True)


def explain_error(body: bytes) -> str | None:
    """'REASON: message (errorUUID ...)' from an `<error>` answer, or None if it is not one."""
    try:
        root = xmlsafe.parse(body)
    except InvalidDocument:
        return None
    if root.tag != "error":
        return None
    reason = (root.findtext("reason") or "").strip() or "UNKNOWN"
    message = (root.findtext("message") or "").strip()
    error_uuid = (root.findtext("errorUUID") or "").strip()
    text = f"{reason}: {message}" if message else reason
    return f"{text} (errorUUID {error_uuid})" if error_uuid else text


class ConnectorXmlAdapter(Adapter):
    """Saves users and lead sources at a Connector partner, as its provider `identifier`."""

    name = "connector_xml"
    supported = frozenset(
        {
            Capability.USER_SAVE,
            Capability.STAFF_LIST,
            Capability.LEADSOURCE_LIST,
            Capability.LEADSOURCE_CREATE,
        }
    )

    def __init__(self, config: PartnerConfig, session: aiohttp.ClientSession) -> None:
        super().__init__(config, session)
        identifier = config.settings.get("identifier")
        if not isinstance(identifier, str) or not identifier.strip():
            raise AdapterConfigError(
                f"provider {config.name!r}: settings.identifier (the hub's provider "
                "identifier at this partner) is not given"
            )
        self._identifier = identifier
        self._key = config.secret("key_env")
        self._timeout = http.timeout_of(config.name, config.settings)
        self._base = http.base_url(config.name, config.url)

    async def save_user(self, club: ClubRef, user: OutboundUser) -> SaveResult:
        body = self._build(lambda: user_document(self._identifier, club, user))
        known = (
            None if user.partner_id is None else {"X-Partner-Id": quote(user.partner_id, safe="")}
        )
        answer = await self._call("POST", "/user", body, known)
        return SaveResult(partner_id=answer.uuid())

    async def list_staff(self, club: ClubRef) -> list[StaffMember]:
        answer = await self._call("GET", f"/staff?{self._scope(club)}")
        return [
            StaffMember(
                id=answer.record_id(user),
                email=_text(user, "userInfo/email"),
                first_name=_text(user, "userInfo/firstname"),
                last_name=_text(user, "userInfo/lastname"),
            )
            for user in answer.children("staffList", "user")
        ]

    async def list_lead_sources(self, club: ClubRef) -> list[LeadSource]:
        answer = await self._call("GET", f"/leadsource?{self._scope(club)}")
        return [
            LeadSource(id=answer.record_id(source), name=_text(source, "leadInfo/name"))
            for source in answer.children("leadSources", "leadSource")
        ]

    async def create_lead_source(self, club: ClubRef, name: str) -> LeadSource:
        record_id = lead_source_record_id(name)
        body = self._build(lambda: lead_source_document(self._identifier, club, record_id, name))
        answer = await self._call("POST", "/leadsource", body)
        answer.uuid()  # only to know it was saved: users name lead sources by recordID
        return LeadSource(id=record_id, name=name)

    def _scope(self, club: ClubRef) -> str:
        query = {"provider": self._identifier, "client_id": club.client_id, "club_id": club.club_id}
        return urlencode(query, quote_via=quote)

    def _build(self, build: Callable[[], bytes]) -> bytes:
        try:
            return build()
        except ValueError as exc:  # lxml refuses text XML 1.0 cannot carry
            raise PermanentPartnerError(
                f"{self.config.name}: cannot be sent as XML: {exc}"
            ) from exc

    async def _call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        more: dict[str, str] | None = None,
    ) -> _Answer:
        headers = {"Authorization": f"Bearer {self._key}", "Accept": XML, **(more or {})}
        if body is not None:
            headers["Content-Type"] = f"{XML}; charset=utf-8"
        what = f"{self.config.name}: {method} {path.partition('?')[0]}"
        status, raw = await http.request(
            self.session,
            method,
            yarl.URL(self._base + path, encoded=True),
            what=what,
            headers=headers,
            body=body,
            total=self._timeout,
            explain=explain_error,
            budget=self.budget,
        )
        answer = _Answer.parse(what, status, raw)
        return answer


@dataclass(slots=True)
class _Answer(http.XmlAnswer):
    """The partner's answer, parsed."""

    def uuid(self) -> str:
        """The partner's UUID from `<response><uuid>`."""
        found = _text(self._root("response"), "uuid")
        if not found:
            raise self.nonsense("the answer has no <uuid>")
        return found

    def children(self, root: str, child: str) -> list[etree._Element]:
        return list(self._root(root).iterchildren(child))

    def record_id(self, element: etree._Element) -> str:
        found = _text(element, "providerInfo/recordID")
        if not found:
            raise self.nonsense(f"a <{element.tag}> has no providerInfo/recordID")
        return found

    def _root(self, tag: str) -> etree._Element:
        if self.root is None or self.root.tag != tag:
            # Some partners answer an <error> with a 200; say what it says.
            why = explain_error(self.raw) if self.root is not None else None
            raise self.nonsense(f"the answer is not a <{tag}>" + (f" but {why}" if why else ""))
        return self.root


def _text(element: etree._Element, path: str) -> str:
    return (element.findtext(path) or "").strip()
