"""The `abc_datatrak` adapter: prospects into ABC Financial's DataTrak, by club number.

Shaped after ABC Financial's public web-services help ("ABC Financial Web
Services": ProspectManagerService insertProspect/updateProspect, the HTTP
services getEmployeeList and getMemberList, "HTTP Services URLs" and "HTTP
Security") and the API FAQ (Application ID and Key, club number as the one
level of authorization). XML over HTTP under `{url}` (ABC's `https://[server]/ws`):

    save_user (create)  GET  {url}/getMemberList/{club}?updateStartTime=   the re-create check
                        POST {url}/insertProspect/{club}   <insertProspect>  -> result/memberId
    save_user (update)  POST {url}/updateProspect/{club}   <updateProspect> with memberId
    list_staff          GET  {url}/getEmployeeList/{club}?employeeStatus=active

Every request carries ABC's `app_id` and `app_key` headers (`settings.app_id`,
the key from the variable `settings.key_env`). The club is
`ClubRef.club_id` (the club number); `ClubRef.client_id` is not used, as
DataTrak knows no client above the club. Answers are ABC's XML envelope
(`<status><response>success</response><message id=..>`); a 2xx whose
status is not `success` is a failure, like any non-2xx.

What DataTrak cannot take, and what this adapter therefore does:

- Members: prospects only. `check_subscription` refuses a subscription that
  receives MEMBER or FORMER_MEMBER, and a MEMBER save is a permanent error.
- Field limits (the docs' "string, up to N characters"): firstName 15,
  lastName 19, street 40, city 17, zip 10, email 60. Longer values are
  truncated, and each truncation is a note of the SaveResult. address2 is
  appended to street (DataTrak has one street line); a state that is not a
  two-letter code, country, company, the trial dates, an INACTIVE status and
  a lead-source name are not sent, each with a note.
- Lead sources: none (no capability at all). Staff: the list only (the
  employee list has no email filter), active employees; the owner goes as
  the prospect's `salesPersonId` (an employee's GUID).
- No idempotency key and no search by email: before a create, the prospects
  the club changed in the last two days are listed and one with the same
  email, first and last name (as sent, after truncation, any case) is updated
  instead, so that a create the hub repeats (its answer lost) within those
  days is not a second prospect. Without an email nothing is looked up.
- updateProspect replaces every field: a field not sent is erased at ABC.

Assumed where the public pages are thin (said so here, not guessed silently):
the prospect operations are SOAP operations in the docs; this adapter posts
the same parameters, under their documented parent elements, as an XML body
to the HTTP services' URL pattern. The salesperson element's name
(`salesPersonId`), the answer's element names beyond `status`, the status
values other than `success`, `updateStartTime`'s format
(`YYYY-MM-DD HH:MM:SS`, the club's time zone, hence a window of days) and 403
for an operation not granted are assumptions. The FAQ also speaks of Basic
authentication for the Application ID and Key; this adapter sends ABC's
`app_id`/`app_key` headers, as ABC's REST API takes them.

Not covered: the SOAP envelope and WSDL, Basic authentication, members
(agreements, billing, check-ins), prospect fields this module has no source
for (middleInitial, beginDate: ABC's default, the day of the insert).

Documents are built with lxml (which escapes every value) and answers are
read with the hub's hardened parser. This module must never build XML by
pasting strings, never send a member, and never send a value over its limit.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable
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
    OutboundUser,
    PartnerConfig,
    PermanentPartnerError,
    SaveResult,
    StaffMember,
)
from hub.connector import xmlsafe
from hub.errors import InvalidDocument

XML = "application/xml"
# The docs' "string, up to N characters" of insertProspect.
LIMITS = {"firstName": 15, "lastName": 19, "street": 40, "city": 17, "zip": 10, "email": 60}
GENDERS = {"M": "male", "F": "female"}
# How far back the re-create check looks: the club's time zone is unknown, so days.
LOOKUP_WINDOW = datetime.timedelta(days=2)
_STATE = re.compile(r"[A-Za-z]{2}")


@dataclass(frozen=True, slots=True)
class Prospect:
    """A prospect as DataTrak takes it: (parent, element, value) in the docs' order."""

    fields: tuple[tuple[str, str, str], ...]
    notes: tuple[str, ...]

    def value(self, name: str) -> str:
        return next((v for _, element, v in self.fields if element == name), "")


def prospect_of(user: OutboundUser) -> Prospect:
    """The fields DataTrak takes, truncated to its limits, and a note for each change."""
    notes: list[str] = []
    street = ", ".join(part for part in (user.address1, user.address2) if part and part.strip())
    state = user.state
    if state is not None and not _STATE.fullmatch(state.strip()):
        notes.append(f"state {state!r} not sent: DataTrak takes a two-letter state code")
        state = None
    wanted: list[tuple[str, str, str | None]] = [
        ("personal", "firstName", user.firstname),
        ("personal", "lastName", user.lastname),
        ("personal", "gender", GENDERS.get(user.gender or "", "unknown")),
        ("personal", "dateofBirth", user.birthdate),
        ("contact", "street", street or None),
        ("contact", "city", user.city),
        ("contact", "state", state.strip().upper() if state else None),
        ("contact", "zip", user.zipcode),
        ("contact", "email", user.email),
        ("contact", "primaryPhone", user.home_phone),
        ("contact", "cellPhone", user.mobile),
        ("contact", "workPhone", user.work_phone),
        ("", "salesPersonId", user.owner_id),
    ]
    fields = []
    for parent, element, value in wanted:
        if value is None or not value.strip():
            continue
        fields.append((parent, element, _fit(element, value.strip(), notes)))
    notes += _dropped(user)
    return Prospect(tuple(fields), tuple(notes))


def _fit(element: str, value: str, notes: list[str]) -> str:
    limit = LIMITS.get(element)
    if limit is None or len(value) <= limit:
        return value
    notes.append(f"{element} truncated from {len(value)} to {limit} characters")
    return value[:limit].rstrip()


def _dropped(user: OutboundUser) -> list[str]:
    dropped = [
        ("country", user.country),
        ("company", user.company),
        ("trialStart", user.trial_start),
        ("trialEnd", user.trial_end),
        ("leadSource", user.lead_source_name or user.lead_source_id),
    ]
    notes = [f"{name} not sent: DataTrak's prospect has no such field" for name, v in dropped if v]
    if user.status == "INACTIVE":
        notes.append("userStatus INACTIVE not sent: DataTrak's prospect has no status")
    return notes


def prospect_document(
    operation: str, club: ClubRef, prospect: Prospect, member_id: str | None = None
) -> bytes:
    """The `<insertProspect>` or `<updateProspect>` body (ValueError for text XML cannot carry)."""
    root = etree.Element(operation)
    etree.SubElement(root, "clubNumber").text = club.club_id
    if member_id is not None:
        etree.SubElement(root, "memberId").text = member_id
    sections: dict[str, etree._Element] = {}
    for parent, element, value in prospect.fields:
        if not parent:
            etree.SubElement(root, element).text = value
            continue
        if parent not in sections:
            sections[parent] = etree.SubElement(root, parent)
        etree.SubElement(sections[parent], element).text = value
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True, pretty_print=True)


def explain_error(body: bytes) -> str | None:
    """'response: message (id ...)' from ABC's status envelope, or None if it is not one."""
    try:
        root = xmlsafe.parse(body)
    except InvalidDocument:
        return None
    status = root.find("status")
    if status is None:
        return None
    response = _text(status, "response") or "unknown"
    message = status.find("message")
    text = f"{response}: {_text(status, 'message')}" if message is not None else response
    message_id = message.get("id") if message is not None else None
    return f"{text} (id {message_id})" if message_id else text


class AbcDataTrakAdapter(Adapter):
    """Creates and updates prospects in a DataTrak club; lists its active employees."""

    name = "abc_datatrak"
    title = "ABC DataTrak"
    prospects_only = True
    supported = frozenset({Capability.USER_SAVE, Capability.STAFF_LIST})

    def __init__(self, config: PartnerConfig, session: aiohttp.ClientSession) -> None:
        super().__init__(config, session)
        app_id = config.settings.get("app_id")
        if not isinstance(app_id, str) or not app_id.strip():
            raise AdapterConfigError(
                f"provider {config.name!r}: settings.app_id (ABC's Application ID) is not given"
            )
        self._app_id = app_id.strip()
        self._key = config.secret("key_env")
        self._timeout = http.timeout_of(config.name, config.settings)
        self._base = http.base_url(config.name, config.url)

    async def save_user(self, club: ClubRef, user: OutboundUser) -> SaveResult:
        self.require_prospect(user)
        prospect = prospect_of(user)
        notes = list(prospect.notes)
        member_id = user.partner_id
        if member_id is None:
            member_id = await self._already_there(club, prospect)
            if member_id is not None:
                notes.append(f"prospect {member_id} already at ABC: updated, not created again")
        if member_id is None:
            body = self._build(lambda: prospect_document("insertProspect", club, prospect))
            answer = await self._call("POST", "insertProspect", club, body=body)
            return SaveResult(partner_id=answer.member_id(), notes=tuple(notes))
        body = self._build(lambda: prospect_document("updateProspect", club, prospect, member_id))
        await self._call("POST", "updateProspect", club, body=body)
        return SaveResult(partner_id=member_id, notes=tuple(notes))

    async def list_staff(self, club: ClubRef) -> list[StaffMember]:
        answer = await self._call("GET", "getEmployeeList", club, {"employeeStatus": "active"})
        return [
            StaffMember(
                id=answer.required(employee, "employeeId"),
                email=_text(employee, "contact/email"),
                first_name=_text(employee, "personal/firstName"),
                last_name=_text(employee, "personal/lastName"),
            )
            for employee in answer.items("employees", "employee")
        ]

    async def _already_there(self, club: ClubRef, prospect: Prospect) -> str | None:
        """The memberId of a prospect changed lately with this email and name, if any."""
        email = prospect.value("email").lower()
        if not email:
            return None
        since = datetime.datetime.now(datetime.UTC) - LOOKUP_WINDOW
        query = {"updateStartTime": since.strftime("%Y-%m-%d %H:%M:%S")}
        answer = await self._call("GET", "getMemberList", club, query)
        wanted = (email, prospect.value("firstName").lower(), prospect.value("lastName").lower())
        for member in answer.items("members", "member"):
            found = tuple(
                _text(member, path).lower()
                for path in ("contact/email", "personal/firstName", "personal/lastName")
            )
            if found == wanted:
                return answer.required(member, "memberId")
        return None

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
        service: str,
        club: ClubRef,
        query: dict[str, str] | None = None,
        *,
        body: bytes | None = None,
    ) -> _Answer:
        path = f"/{service}/{quote(club.club_id, safe='')}"
        if query:
            path += "?" + urlencode(query, quote_via=quote)
        headers = {"app_id": self._app_id, "app_key": self._key, "Accept": XML}
        if body is not None:
            headers["Content-Type"] = f"{XML}; charset=utf-8"
        what = f"{self.config.name}: {method} {service}"
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
        answer.succeeded()
        return answer


@dataclass(slots=True)
class _Answer(http.XmlAnswer):
    """ABC's answer, parsed: its status said success."""

    def succeeded(self) -> None:
        """Raise unless `status/response` says success (ABC may answer a failure with a 2xx)."""
        assert self.root is not None
        if _text(self.root, "status/response").lower() != "success":
            why = explain_error(self.raw) or "no <status> in the answer"
            raise self.nonsense(f"the answer is not a success: {why}")

    def member_id(self) -> str:
        assert self.root is not None
        found = _text(self.root, "result/memberId")
        if not found:
            raise self.nonsense("the answer has no result/memberId")
        return found

    def items(self, parent: str, child: str) -> Iterable[etree._Element]:
        assert self.root is not None
        section = self.root.find(parent)
        if section is None:
            raise self.nonsense(f"the answer has no <{parent}>")
        return list(section.iterchildren(child))

    def required(self, element: etree._Element, path: str) -> str:
        found = _text(element, path)
        if not found:
            raise self.nonsense(f"a <{element.tag}> has no <{path}>")
        return found


def _text(element: etree._Element, path: str) -> str:
    return (element.findtext(path) or "").strip()
