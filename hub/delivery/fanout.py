"""Who receives a stored record: the subscriptions of its client, by what they receive.

Pure: no I/O. Never the provider that sent it; staff and lead sources go to
nobody (they feed the mappings); a PROSPECT goes to subscriptions receiving
PROSPECT, an ACTIVE member to MEMBER, an INACTIVE member to FORMER_MEMBER.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.connector.documents import Body, Kind
from hub.tenancy import Subscription, Tenancy


@dataclass(frozen=True, slots=True)
class Target:
    partner: str
    extras: frozenset[str]


def category(body: Body) -> str:
    info = body.get("userInfo", {})
    if info.get("userType") == "MEMBER":
        return "FORMER_MEMBER" if info.get("userStatus") == "INACTIVE" else "MEMBER"
    return str(info.get("userType", ""))


def targets(tenancy: Tenancy, client: str, kind: Kind, sender: str, body: Body) -> list[Target]:
    if kind is not Kind.USER or client not in tenancy.clients:
        return []
    wanted = category(body)
    return [
        Target(s.provider, s.extras)
        for s in tenancy.clients[client].subscriptions
        if _receives(tenancy, s, sender, wanted)
    ]


def _receives(tenancy: Tenancy, subscription: Subscription, sender: str, wanted: str) -> bool:
    provider = tenancy.providers[subscription.provider]
    return provider.name != sender and bool(provider.adapter) and wanted in subscription.receives
