"""The Connector API's endpoints: save and fetch users, staff and lead sources.

A save is checked in this order: key (401), content type (415), size (413),
document (400, every bad field), identifier of the key's provider (403),
club connected to that provider (403); then it is published (`batcher.py`
groups saves into messages) and answered only once RabbitMQ confirmed it
(else 503). No database on the save path.
A fetch answers from the store, scoped to the caller's own records.
"""

from __future__ import annotations

import datetime
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from hub.connector import answers
from hub.connector.documents import Kind, parse
from hub.errors import (
    Forbidden,
    InvalidDocument,
    NotAuthenticated,
    NotFound,
    TooLarge,
    UnsupportedMedia,
)
from hub.ingress.context import PROVIDER, RECORD, RESOURCES, Resources
from hub.message import Inbound
from hub.records import StoredRecord, hub_uuid
from hub.store import records
from hub.tenancy import Provider

XML_TYPES = ("application/xml", "text/xml")
XML = "application/xml"


def authenticate(request: web.Request, resources: Resources) -> Provider:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise NotAuthenticated("send the provider's API key as 'Authorization: Bearer <key>'")
    provider = resources.tenancy.authenticate(key.strip())
    if provider is None:
        raise NotAuthenticated("the API key is not known")
    request[PROVIDER] = provider.name
    return provider


async def read_xml(request: web.Request, max_body: int) -> bytes:
    if request.content_type not in XML_TYPES:
        raise UnsupportedMedia(
            f"Content-Type must be application/xml or text/xml, not {request.content_type!r}"
        )
    if request.charset not in (None, "utf-8", "UTF-8"):
        raise UnsupportedMedia(f"the body must be UTF-8, not {request.charset}")
    if request.content_length is not None and request.content_length > max_body:
        raise TooLarge(f"the body has {request.content_length} bytes; the limit is {max_body}")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise TooLarge(f"the body is over the limit of {max_body} bytes") from exc


def save(kind: Kind) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        resources = request.app[RESOURCES]
        provider = authenticate(request, resources)
        body = await read_xml(request, resources.settings.max_body)
        document = parse(kind, body)
        request[RECORD] = f"{kind}:{document.client_id}/{document.club_id}/{document.record_id}"
        if document.identifier != provider.identifier:
            raise Forbidden(
                f"providerInfo/identifier {document.identifier!r} is not the identifier "
                "of the provider whose key was sent"
            )
        club = resources.tenancy.club(provider.name, document.client_id, document.club_id)
        if club is None:
            raise Forbidden(
                f"clientID {document.client_id!r} / clubID {document.club_id!r} is not a club "
                f"connected to provider {provider.name!r}"
            )
        record_uuid = hub_uuid(
            provider.name, document.client_id, document.club_id, kind, document.record_id
        )
        inbound = Inbound(
            message_id=uuid.uuid4(),
            uuid=record_uuid,
            kind=kind,
            provider=provider.name,
            client=club.client,
            club=club.name,
            client_id=document.client_id,
            club_id=document.club_id,
            record_id=document.record_id,
            body=document.body,
            received_at=datetime.datetime.now(datetime.UTC),
        )
        await resources.batcher.submit(inbound)
        return web.Response(body=answers.response(record_uuid), content_type=XML)

    return handler


def fetch(kind: Kind, one_by: str) -> Handler:
    """GET: one record by `one_by` (recordID or identifier), or a club's list."""

    async def handler(request: web.Request) -> web.Response:
        resources = request.app[RESOURCES]
        provider = authenticate(request, resources)
        query = request.query
        _check_caller(query.get("provider"), provider)
        client_id, club_id = query.get("client_id"), query.get("club_id")
        record_id = query.get(one_by)
        if record_id:
            request[RECORD] = f"{kind}:{record_id}"
            found = await records.find(
                resources.pool, provider.name, kind, record_id, client_id, club_id
            )
            return _one(kind, one_by, record_id, found, provider)
        if kind is Kind.USER or not (client_id and club_id):
            lists = "" if kind is Kind.USER else ", or client_id and club_id for the list"
            raise InvalidDocument([f"query: give {one_by}{lists}"])
        if resources.tenancy.club(provider.name, client_id, club_id) is None:
            raise Forbidden(
                f"client_id {client_id!r} / club_id {club_id!r} is not a club "
                f"connected to provider {provider.name!r}"
            )
        listed = await records.in_club(resources.pool, provider.name, kind, client_id, club_id)
        body = answers.record_list(kind, listed, provider.identifier)
        return web.Response(body=body, content_type=XML)

    return handler


def _check_caller(identifier: str | None, provider: Provider) -> None:
    if not identifier:
        raise InvalidDocument(["query: provider (your identifier) is mandatory"])
    if identifier != provider.identifier:
        raise Forbidden("query: provider is not the identifier of the key's provider")


def _one(
    kind: Kind, one_by: str, record_id: str, found: list[StoredRecord], provider: Provider
) -> web.Response:
    if not found:
        raise NotFound(f"no {kind} with {one_by} {record_id!r} saved by {provider.name}")
    if len(found) > 1:
        raise InvalidDocument(
            [
                f"query: {one_by} {record_id!r} is saved for several clubs;"
                " give client_id and club_id"
            ]
        )
    return web.Response(body=answers.record(found[0], provider.identifier), content_type=XML)
