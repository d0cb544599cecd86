"""What the ingress's handlers share: resources in app keys, request facts in request keys.

The request keys carry what the one log line per request reports (provider,
record key, error UUID); handlers fill them in, the middleware reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from hub.broker.publisher import Publisher
from hub.broker.topology import Topology
from hub.ingress.batcher import InboxBatcher
from hub.settings import Settings
from hub.store.pool import Pool
from hub.tenancy import Tenancy


@dataclass(frozen=True, slots=True)
class Resources:
    """Everything the handlers use, opened by the caller of `create_app`."""

    settings: Settings
    tenancy: Tenancy
    topology: Topology
    publisher: Publisher
    batcher: InboxBatcher
    pool: Pool


RESOURCES = web.AppKey("resources", Resources)
PROVIDER = web.RequestKey("provider", str)
RECORD = web.RequestKey("record", str)
ERROR_UUID = web.RequestKey("error_uuid", str)
ERROR_MESSAGE = web.RequestKey("error_message", str)
