"""How the settings and the tenancy file become the broker topology.

Every component builds its topology here, so that all of them declare the
same queues with the same arguments.
"""

from __future__ import annotations

from hub.broker.topology import Topology
from hub.settings import Settings
from hub.tenancy import Tenancy


def topology(settings: Settings, tenancy: Tenancy) -> Topology:
    return Topology(
        settings.namespace,
        partners=tuple(p.name for p in tenancy.receivers()),
        tiers=settings.retry_tiers,
        max_length=settings.queue_max_length,
    )
