"""The ops port's shared parts: the app's keys, who is asking, and what they may do.

Two tokens (`HUB_OPS_TOKEN`: read, replay and purge; `HUB_OPS_READ_TOKEN`:
read only), given as `Authorization: Bearer <token>` (the API, scripts,
Prometheus) or as the `hub_ops_token` cookie that the dashboard's login sets.
`/healthz` and `/metrics` need none. The ops API (`hub.ops.api`) and the
dashboard (`hub.ops.dashboard`) are two faces of the same `Ops` functions.
"""

from __future__ import annotations

import hmac
from enum import StrEnum

from aiohttp import web

from hub.ops.context import Ops
from hub.settings import Settings

OPS = web.AppKey("ops", Ops)
SETTINGS = web.AppKey("settings", Settings)
COOKIE = "hub_ops_token"
OPEN_PATHS = frozenset({"/healthz", "/metrics", "/login"})


class Role(StrEnum):
    READ = "read"
    REPLAY = "replay"  # read, replay, purge, redeliver, refresh


ROLE = web.RequestKey("role", Role)  # set by the auth middleware


def role_of(settings: Settings, token: str | None) -> Role | None:
    """The rights a token gives, compared in constant time; None for no or a wrong token."""
    if not token:
        return None
    if settings.ops_token and hmac.compare_digest(token, settings.ops_token):
        return Role.REPLAY
    if settings.ops_read_token and hmac.compare_digest(token, settings.ops_read_token):
        return Role.READ
    return None


def token_of(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE)


def role(request: web.Request) -> Role:
    """The caller's rights (set by the auth middleware)."""
    return request[ROLE]


def operator(request: web.Request) -> str:
    """Who acts, for the audit: the X-Hub-Operator header if given, with the role."""
    name = request.headers.get("X-Hub-Operator", "").strip()[:100] or "ops-api"
    return f"{name} ({role(request).value} token, {request.remote})"
