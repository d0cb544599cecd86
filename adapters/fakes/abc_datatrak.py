"""A fake ABC Financial DataTrak club system, for tests and the demo.

Written from ABC's public web-services help, not from the adapter (which it
must never import): under `/ws`, POST insertProspect/{club} and
updateProspect/{club} (ProspectManagerService's parameters, under their
parents `personal` and `contact`, as an XML body), GET getEmployeeList/{club}
(?employeeStatus=active|inactive|all) and getMemberList/{club}
(?updateStartTime=YYYY-MM-DD HH:MM:SS). It behaves as the docs say DataTrak
does, quirks included:

- `app_id` and `app_key` headers, or 401; a club number the app was not
  granted answers 401 too ("401 Authorization Required"), an operation not
  granted 403.
- insertProspect requires clubNumber (that of the URL), firstName,
  lastName and gender, and refuses a value over its limit (firstName 15,
  lastName 19, street 40, city 17, zip 10, email 60), a state that is not two
  letters, an unknown element or a salesPersonId that is no employee of the
  club: 400 with the errors in ABC's status envelope.
- updateProspect needs the memberId insertProspect answered, works only
  while the person is a prospect (`convert()` makes one a member), replaces
  every field (a field not sent is erased) but keeps beginDate, and
  answers no value.
- Errors are ABC's status envelope, `<error><status><response>error
  </response><message id="...">...</message></status></error>`; answers
  carry it too, with `success`, under a root named after the service.

`users` holds each prospect's fields (flat, by element name, with
`memberId`, `clubNumber`, `beginDate`) keyed by its memberId: DataTrak keeps
no ID of the hub's. `creates` counts every insertProspect call per person
(lowercased email, or "first last" without one), each one a new prospect, as
at ABC: there is no duplicate check to hide a second insert. `partner_ids`
maps that key to the memberId last created for it. IDs are GUIDs numbered per fake, so runs repeat.

    python -m adapters.fakes.abc_datatrak --port 9103 --app-id ID --key-env VAR \\
        [--club NUMBER ...] [--staff club:email ...] [--capability C ...]
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import re
import uuid
from typing import Any

from aiohttp import web
from lxml import etree

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
from hub.connector import xmlsafe
from hub.errors import InvalidDocument

XML = "application/xml"
PERSONAL = {
    "firstName": 15,
    "lastName": 19,
    "middleInitial": 1,
    "gender": None,
    "dateofBirth": None,
}
CONTACT = {
    "street": 40,
    "city": 17,
    "state": 2,
    "zip": 10,
    "email": 60,
    "primaryPhone": None,
    "cellPhone": None,
    "workPhone": None,
}
TOP = {"clubNumber", "memberId", "personal", "contact", "salesPersonId", "beginDate"}
GENDERS = {"male", "female", "unknown"}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class FakeAbcDataTrak(FakeServer):
    """DataTrak clubs at which the hub is the vendor app `app_id` with key `app_key`."""

    base_path = "/ws"

    def __init__(
        self,
        app_id: str,
        app_key: str,
        capabilities: set[Capability] | None = None,
        clubs: set[str] | None = None,
    ) -> None:
        super().__init__(capabilities)
        self.app_id = app_id
        self.app_key = app_key
        # The club numbers the app was granted (None: every club).
        self.clubs = clubs
        # Operations not granted to the app (answered 403).
        self.denied: set[str] = set()
        # club number -> employeeId -> {"email", "firstName", "lastName", "active"}
        self.staff: dict[str, dict[str, dict[str, Any]]] = {}
        self.members: set[str] = set()  # memberIds converted to full members
        self._ids = itertools.count(1)
        self._updated: dict[str, datetime.datetime] = {}

    def add_staff(
        self,
        club: str,
        email: str,
        first_name: str = "",
        last_name: str = "",
        active: bool = True,
    ) -> str:
        """Seed an employee of the club number `club`; its employeeId (a GUID)."""
        employee_id = self._guid()
        self.staff.setdefault(club, {})[employee_id] = {
            "email": email,
            "firstName": first_name,
            "lastName": last_name,
            "active": active,
        }
        return employee_id

    def convert(self, member_id: str) -> None:
        """The prospect joins: updateProspect no longer works for it."""
        self.members.add(member_id)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/ws/insertProspect/{club}", self._insert),
            web.post("/ws/updateProspect/{club}", self._update),
            web.get("/ws/getEmployeeList/{club}", self._employees),
            web.get("/ws/getMemberList/{club}", self._members),
        ]

    def authorised(self, request: web.Request) -> bool:
        return (
            request.headers.get("app_id") == self.app_id
            and request.headers.get("app_key") == self.app_key
        )

    def error(self, status: int, message: str, body: str | None = None) -> web.Response:
        if body is not None:
            return web.Response(status=status, text=body, content_type=XML)
        if status == 401 and "bearer" in message:  # the shared middleware's words
            message = "401 Authorization Required: wrong or missing app_id or app_key"
        root = etree.Element("error")
        _status(root, "error", message)
        return _xml(root, status)

    async def _insert(self, request: web.Request) -> web.Response:
        self.require(Capability.USER_SAVE)
        club = self._club(request, "insertProspect")
        fields = await self._prospect(request, club, "insertProspect")
        member_id = self._guid()
        person = (fields.get("email") or f"{fields['firstName']} {fields['lastName']}").lower()
        self.count_create(request, person)
        self.partner_ids[person] = member_id
        today = datetime.date.today().isoformat()
        self._store(member_id, club, {"beginDate": today, **fields})
        root = _answer("insertProspect", club)
        etree.SubElement(etree.SubElement(root, "result"), "memberId").text = member_id
        return _xml(root)

    async def _update(self, request: web.Request) -> web.Response:
        self.require(Capability.USER_SAVE)
        club = self._club(request, "updateProspect")
        fields = await self._prospect(request, club, "updateProspect")
        member_id = fields.pop("memberId", "")
        old = self.users.get(member_id)
        if old is None or old["clubNumber"] != club:
            raise Refused(400, f"memberId: no prospect {member_id!r} in club {club}")
        if member_id in self.members:
            raise Refused(400, f"memberId: {member_id} is a member, not a prospect")
        self._store(member_id, club, {"beginDate": old["beginDate"], **fields})
        return _xml(_answer("updateProspect", club))

    async def _employees(self, request: web.Request) -> web.Response:
        self.require(Capability.STAFF_LIST)
        club = self._club(request, "getEmployeeList")
        wanted = request.query.get("employeeStatus", "all").lower()
        if wanted not in ("active", "inactive", "all"):
            raise Refused(400, f"employeeStatus: must be active, inactive or all, not {wanted!r}")
        root = _answer("getEmployeeList", club)
        employees = etree.SubElement(root, "employees")
        for employee_id, staff in self.staff.get(club, {}).items():
            if wanted != "all" and staff["active"] != (wanted == "active"):
                continue
            employee = etree.SubElement(employees, "employee")
            etree.SubElement(employee, "employeeId").text = employee_id
            _section(employee, "personal", {k: staff[k] for k in ("firstName", "lastName")})
            _section(employee, "contact", {"email": staff["email"]})
        return _xml(root)

    async def _members(self, request: web.Request) -> web.Response:
        club = self._club(request, "getMemberList")
        since = _since(request.query.get("updateStartTime"))
        root = _answer("getMemberList", club)
        members = etree.SubElement(root, "members")
        for member_id, user in self.users.items():
            if user["clubNumber"] != club or (since and self._updated[member_id] < since):
                continue
            member = etree.SubElement(members, "member")
            etree.SubElement(member, "memberId").text = member_id
            _section(member, "personal", {k: user.get(k, "") for k in PERSONAL})
            _section(member, "contact", {k: user.get(k, "") for k in CONTACT})
        return _xml(root)

    def _club(self, request: web.Request, operation: str) -> str:
        club = request.match_info["club"]
        if self.clubs is not None and club not in self.clubs:
            raise Refused(401, f"401 Authorization Required: club {club} is not granted")
        if operation in self.denied:
            raise Refused(403, f"{operation} is not granted for club {club}")
        return club

    async def _prospect(self, request: web.Request, club: str, operation: str) -> dict[str, str]:
        if request.content_type not in (XML, "text/xml"):
            raise Refused(415, f"Content-Type must be {XML}, not {request.content_type!r}")
        try:
            root = xmlsafe.parse(await request.read())
        except InvalidDocument as exc:
            raise Refused(400, exc.message) from None
        if root.tag != operation:
            raise Refused(400, f"the body must be an <{operation}>, not <{root.tag}>")
        fields, problems = _fields(root)
        problems += self._checked(fields, club, operation)
        if problems:
            raise Refused(400, "; ".join(problems))
        return fields

    def _checked(self, fields: dict[str, str], club: str, operation: str) -> list[str]:
        required = ["clubNumber", "firstName", "lastName", "gender"]
        required += ["memberId"] if operation == "updateProspect" else []
        problems = [f"{name}: is required" for name in required if not fields.get(name)]
        if operation == "insertProspect" and "memberId" in fields:
            problems.append("memberId: a new prospect has none")
        if fields.get("clubNumber", club) != club:
            problems.append("clubNumber: is not the club number of the URL")
        if "gender" in fields and fields["gender"] not in GENDERS:
            problems.append("gender: must be male, female or unknown")
        if "state" in fields and not re.fullmatch(r"[A-Za-z]{2}", fields["state"]):
            problems.append("state: must be a two-letter state code")
        for name in ("dateofBirth", "beginDate"):
            if name in fields and not _DATE.fullmatch(fields[name]):
                problems.append(f"{name}: must be YYYY-MM-DD")
        owner = fields.get("salesPersonId")
        if owner is not None and owner not in self.staff.get(club, {}):
            problems.append(f"salesPersonId: {owner!r} is no employee of club {club}")
        return problems

    def _store(self, member_id: str, club: str, fields: dict[str, str]) -> None:
        fields.pop("clubNumber", None)
        self.users[member_id] = {"memberId": member_id, "clubNumber": club, **fields}
        self._updated[member_id] = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)

    def _guid(self) -> str:
        return str(uuid.UUID(int=0xABC << 100 | next(self._ids))).upper()


def _fields(root: etree._Element) -> tuple[dict[str, str], list[str]]:
    """The document's values by element name, and what is wrong with its shape or lengths."""
    fields: dict[str, str] = {}
    problems: list[str] = []
    for child in root:
        if child.tag not in TOP:
            problems.append(f"{child.tag}: unknown element")
        elif child.tag in ("personal", "contact"):
            limits = PERSONAL if child.tag == "personal" else CONTACT
            for item in child:
                if item.tag not in limits:
                    problems.append(f"{child.tag}/{item.tag}: unknown element")
                    continue
                fields[item.tag] = (item.text or "").strip()
                limit = limits[item.tag]
                if limit is not None and len(fields[item.tag]) > limit:
                    problems.append(
                        f"{item.tag}: at most {limit} characters, not {len(fields[item.tag])}"
                    )
        else:
            fields[child.tag] = (child.text or "").strip()
    return {k: v for k, v in fields.items() if v}, problems


def _since(value: str | None) -> datetime.datetime | None:
    if value is None:
        return None
    try:
        return datetime.datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise Refused(400, "updateStartTime: must be YYYY-MM-DD HH:MM:SS") from None


def _answer(service: str, club: str) -> etree._Element:
    root = etree.Element(service)
    _status(root, "success", "Service completed successfully")
    etree.SubElement(etree.SubElement(root, "request"), "clubNumber").text = club
    return root


def _status(root: etree._Element, response: str, message: str) -> None:
    status = etree.SubElement(root, "status")
    etree.SubElement(status, "response").text = response
    element = etree.SubElement(status, "message", id=uuid.uuid4().hex[:12])
    element.text = message


def _section(parent: etree._Element, name: str, values: dict[str, str]) -> None:
    section = etree.SubElement(parent, name)
    for tag, value in values.items():
        if value:
            etree.SubElement(section, tag).text = value


def _xml(root: etree._Element, status: int = 200) -> web.Response:
    body = etree.tostring(root, encoding="UTF-8", xml_declaration=True)
    return web.Response(status=status, body=body, content_type=XML)


def main(argv: list[str] | None = None) -> None:
    parser = command_line(
        "abc_datatrak", "A fake ABC Financial DataTrak (prospects, employees).", 9103
    )
    parser.add_argument("--app-id", required=True, help="the hub's Application ID at ABC")
    parser.add_argument("--key-env", required=True, help="variable holding the app key")
    parser.add_argument("--club", action="append", help="a club number granted (default: all)")
    parser.add_argument("--staff", action="append", default=[], metavar="CLUB:EMAIL")
    args = parser.parse_args(argv)
    clubs = set(args.club) if args.club else None
    key = secret(parser, args.key_env)
    fake = FakeAbcDataTrak(args.app_id, key, capabilities_of(args), clubs)
    seed(args.staff, 2, fake.add_staff)
    asyncio.run(serve(fake, args.host, args.port, "fake ABC DataTrak"))


if __name__ == "__main__":
    main()
