"""A running hub (router, delivery, ingress in the test's loop) with dead letters made by
a failing fake partner, and `Ops` on its namespace: what every operator test starts from.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest

from hub.ops.context import Ops
from hub.settings import Settings
from tests.conftest import eventually
from tests.delivery.conftest import (  # noqa: F401  (fixtures used by the tests here)
    ALL,
    DeliveryHub,
    Partner,
    StartHub,
    partner_env,
    prospect_xml,
    start_hub,
)

OPS_TOKEN = "ops-operator-token"
READ_TOKEN = "ops-read-token"


@pytest.fixture
async def hub(start_hub: StartHub) -> DeliveryHub:  # noqa: F811
    """Two partners: crm (every capability) and books (user.save only)."""
    return await start_hub(
        [Partner("crm", ALL, max_attempts=2), Partner("books", ["user.save"], max_attempts=2)],
        ops_token=OPS_TOKEN,
        ops_read_token=READ_TOKEN,
    )


@pytest.fixture
async def ops(hub: DeliveryHub) -> AsyncIterator[Ops]:
    assert hub.tenancy is not None
    opened = await Ops.open(hub.settings, hub.tenancy)
    try:
        yield opened
    finally:
        await opened.close()


MakeDead = Callable[..., Awaitable[list[str]]]


@pytest.fixture
def make_dead(hub: DeliveryHub) -> MakeDead:
    """Post prospects that `partner` answers 400 to; return their UUIDs once all are dead."""

    async def make(
        record_ids: list[str], partner: str = "crm", firstname: str = "Ada"
    ) -> list[str]:
        fake = hub.fake(partner)
        before = await hub.pool.fetchval("SELECT count(*) FROM dead_letters")
        fake.fail_next(len(record_ids), status=400, body='{"error": "lastName rejected"}')
        # One at a time, so that only these records meet the failures.
        uuids = [await hub.post("user", prospect_xml(r, firstname=firstname)) for r in record_ids]

        async def all_dead() -> bool:
            count = await hub.pool.fetchval("SELECT count(*) FROM dead_letters")
            return bool(count >= before + len(record_ids))

        await eventually(all_dead, within=20)
        return uuids

    return make


def with_ops(settings: Settings) -> Settings:
    return replace(settings, ops_token=OPS_TOKEN, ops_read_token=READ_TOKEN)
