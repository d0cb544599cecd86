"""A fake partner that speaks the Connector API, for tests and the demo.

The subset the connector_xml adapter uses, under `/connector/api/2011-11`:
POST /user, GET /staff (the list), GET /leadsource (the list), POST
/leadsource. Documents are checked with the hub's own parser and rules
(`hub.connector.documents`), answers and errors are the hub's own XML
(`hub.connector.answers`), and a save answers the UUID the hub would give:
uuid5 of (identifier, client, club, kind, recordID), so a re-save keeps it.
This fake must never import the adapter it tests.

A save of a known recordID is an update here, as at a Connector partner, so
what the fake stores cannot show a second create. `creates` counts the hub's
create calls instead: every POST /user without `X-Partner-Id` (the hub holds
no partner UUID for the record), each time, repeats included. One with it is
an update, refused (400) when the fake gave the record another UUID (and,
for a recordID it does not know, a create the hub did not ask for: not
counted).

    python -m adapters.fakes.connector_xml --port 9101 --key-env VAR --identifier ID \\
        [--staff client:club:email ...] [--lead-source client:club:name ...]
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from urllib.parse import unquote

from aiohttp import web
from lxml import etree

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
from hub.connector import answers
from hub.connector.documents import Document, Kind, parse
from hub.errors import InvalidDocument
from hub.records import hub_uuid

BASE = "/connector/api/2011-11"
XML = "application/xml"
_REASONS = {
    400: "VALIDATION",
    401: "AUTHENTICATION",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    413: "TOO_LARGE",
    415: "UNSUPPORTED_MEDIA",
    503: "UNAVAILABLE",
}

Club = tuple[str, str]  # (client ID, club ID)


class FakeConnectorPartner(FakeServer):
    """A Connector partner at which the hub is the provider `identifier` with bearer `key`.

    `users` (document sections by section name), `partner_ids` and `creates`
    are keyed by the saved recordID, which the adapter sets to the hub UUID.
    """

    base_path = BASE

    def __init__(
        self, key: str, identifier: str, capabilities: set[Capability] | None = None
    ) -> None:
        super().__init__(capabilities)
        self.key = key
        self.identifier = identifier
        # (client, club) -> recordID -> {"email", "firstname", "lastname"}
        self.staff: dict[Club, dict[str, dict[str, str]]] = {}
        # (client, club) -> recordID -> name
        self.lead_sources: dict[Club, dict[str, str]] = {}
        self._ids = itertools.count(1)

    def add_staff(
        self, client_id: str, club_id: str, email: str, first_name: str = "", last_name: str = ""
    ) -> str:
        """Seed a staff member of (client_id, club_id) at the partner; its recordID."""
        record_id = f"S-{next(self._ids)}"
        self.staff.setdefault((client_id, club_id), {})[record_id] = {
            "email": email,
            "firstname": first_name,
            "lastname": last_name,
        }
        return record_id

    def add_lead_source(
        self, client_id: str, club_id: str, name: str, record_id: str | None = None
    ) -> str:
        record_id = record_id or f"L-{next(self._ids)}"
        self.lead_sources.setdefault((client_id, club_id), {})[record_id] = name
        return record_id

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(f"{BASE}/user", self._save_user),
            web.get(f"{BASE}/staff", self._staff),
            web.get(f"{BASE}/leadsource", self._lead_sources),
            web.post(f"{BASE}/leadsource", self._save_lead_source),
        ]

    def authorised(self, request: web.Request) -> bool:
        return bearer(request) == self.key

    def error(self, status: int, message: str, body: str | None = None) -> web.Response:
        if body is None:
            reason = _REASONS.get(status, "UNKNOWN")
            return _xml(answers.error(reason, uuid.uuid4(), message), status)
        return web.Response(status=status, text=body, content_type=XML)

    async def _save_user(self, request: web.Request) -> web.Response:
        self.require(Capability.USER_SAVE)
        document = await self._document(request, Kind.USER)
        record_id = document.record_id
        known = request.headers.get("X-Partner-Id")
        if known is None:
            self.count_create(request, record_id)
        elif record_id in self.partner_ids and unquote(known) != self.partner_ids[record_id]:
            raise Refused(400, "X-Partner-Id is not this partner's UUID for the record")
        if record_id not in self.partner_ids:
            self.partner_ids[record_id] = str(self._uuid(document))
        self.users[record_id] = document.body
        return _xml(answers.response(uuid.UUID(self.partner_ids[record_id])))

    async def _save_lead_source(self, request: web.Request) -> web.Response:
        self.require(Capability.LEADSOURCE_CREATE)
        document = await self._document(request, Kind.LEADSOURCE)
        club = (document.client_id, document.club_id)
        name = document.body["leadInfo"]["name"]
        self.lead_sources.setdefault(club, {})[document.record_id] = name
        return _xml(answers.response(self._uuid(document)))

    async def _staff(self, request: web.Request) -> web.Response:
        self.require(Capability.STAFF_LIST)
        root = etree.Element("staffList")
        for record_id, staff in self.staff.get(self._scope(request), {}).items():
            user = etree.SubElement(root, "user")
            self._provider_info(user, request, record_id)
            info = etree.SubElement(user, "userInfo")
            values = {**staff, "userStatus": "ACTIVE", "userType": "STAFF"}
            for name in ("firstname", "lastname", "userStatus", "userType", "email"):
                if values[name]:
                    etree.SubElement(info, name).text = values[name]
        return _xml(etree.tostring(root, encoding="UTF-8"))

    async def _lead_sources(self, request: web.Request) -> web.Response:
        self.require(Capability.LEADSOURCE_LIST)
        root = etree.Element("leadSources")
        for record_id, name in self.lead_sources.get(self._scope(request), {}).items():
            source = etree.SubElement(root, "leadSource")
            self._provider_info(source, request, record_id)
            info = etree.SubElement(source, "leadInfo")
            etree.SubElement(info, "name").text = name
            etree.SubElement(info, "active").text = "true"
        return _xml(etree.tostring(root, encoding="UTF-8"))

    async def _document(self, request: web.Request, kind: Kind) -> Document:
        if request.content_type not in (XML, "text/xml"):
            raise Refused(415, f"Content-Type must be {XML}, not {request.content_type!r}")
        try:
            document = parse(kind, await request.read())
        except InvalidDocument as exc:
            raise Refused(400, exc.message) from None
        if document.identifier != self.identifier:
            raise Refused(403, "providerInfo/identifier: is not the key's provider")
        return document

    def _scope(self, request: web.Request) -> Club:
        query = request.query
        if not all(query.get(name) for name in ("provider", "client_id", "club_id")):
            raise Refused(400, "a list needs provider, client_id and club_id")
        if query["provider"] != self.identifier:
            raise Refused(403, "provider: is not the key's provider")
        return query["client_id"], query["club_id"]

    def _provider_info(self, parent: etree._Element, request: web.Request, record_id: str) -> None:
        info = etree.SubElement(parent, "providerInfo")
        etree.SubElement(info, "identifier").text = self.identifier
        etree.SubElement(info, "clientID").text = request.query["client_id"]
        etree.SubElement(info, "clubID").text = request.query["club_id"]
        etree.SubElement(info, "recordID").text = record_id

    def _uuid(self, document: Document) -> uuid.UUID:
        return hub_uuid(
            document.identifier,
            document.client_id,
            document.club_id,
            document.kind,
            document.record_id,
        )


def _xml(body: bytes, status: int = 200) -> web.Response:
    return web.Response(status=status, body=body, content_type=XML)


def main(argv: list[str] | None = None) -> None:
    parser = command_line("connector_xml", "A fake partner speaking the Connector API.", 9101)
    parser.add_argument("--key-env", required=True, help="variable holding the hub's key there")
    parser.add_argument("--identifier", required=True, help="the hub's provider identifier")
    parser.add_argument("--staff", action="append", default=[], metavar="CLIENT:CLUB:EMAIL")
    parser.add_argument("--lead-source", action="append", default=[], metavar="CLIENT:CLUB:NAME")
    args = parser.parse_args(argv)
    key = secret(parser, args.key_env)
    fake = FakeConnectorPartner(key, args.identifier, capabilities_of(args))
    seed(args.staff, 3, fake.add_staff)
    seed(args.lead_source, 3, fake.add_lead_source)
    asyncio.run(serve(fake, args.host, args.port, "fake Connector partner"))


if __name__ == "__main__":
    main()
