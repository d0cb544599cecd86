"""A partner that creates the record, then answers too late: the hub's retry makes no second one.

The fake carries the create out (the person stored) and answers only after
the adapter's timeout (2 s here) has fired, once (`answer_late`). For the
hub the attempt failed (a timeout, transient), so it tries again, with no
partner ID to update. Mindbody, ClubReady and ABC DataTrak take no
idempotency key: only the adapter's look-up before a create (by email and
name, or by email and ExternalId) stands between that retry and a second
person, so exactly one create call may reach them. generic_json and
connector_xml saves are idempotent by the hub UUID: the retry is a second
create call (the hub never got the ID), which the partner answers as the
same user, so they end with one user and one ID all the same.

Run on the real path: ingress, router and delivery in the test's loop,
RabbitMQ and PostgreSQL real, each fake a real HTTP server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.fakes.abc_datatrak import FakeAbcDataTrak
from adapters.fakes.clubready import FakeClubReady
from adapters.fakes.connector_xml import FakeConnectorPartner
from adapters.fakes.generic_json import FakeGenericJson
from adapters.fakes.mindbody import FakeMindbody
from adapters.fakes.server import FakeServer
from tests.conftest import eventually
from tests.delivery.conftest import TOKEN, DeliveryHub, Partner, StartHub, prospect_xml

TIMEOUT = 2  # settings.timeout of every partner here
LATE = TIMEOUT + 1.5  # the create's answer comes this long after it was carried out
PERSON = "ada@example.com"  # prospect_xml's email: how fakes without our IDs key a person
USERNAME, PASSWORD = "hub-staff", "mb-password"


@dataclass(frozen=True)
class Case:
    partner: Callable[[], Partner]
    # The fake's key for the person (in `creates`), and its ID for them, by hub UUID.
    key: Callable[[str], str]
    partner_id: Callable[[FakeServer, str], str]
    # Create calls that reach the partner: 1 where a second would be a second person.
    creates: int


def _settings(extra: str = "") -> str:
    return f'{{ key_env = "HUB_TEST_PARTNER_TOKEN", timeout = {TIMEOUT}{extra} }}'


def _only_user(fake: FakeServer, record: str) -> str:
    [partner_id] = fake.users  # keyed by the partner's own ID
    return partner_id


CASES = {
    "mindbody": Case(
        lambda: Partner(
            "mb",
            ["user.save"],
            adapter="mindbody",
            make_fake=lambda: FakeMindbody(TOKEN, USERNAME, PASSWORD),
            settings=_settings(
                f', username = "{USERNAME}", password_env = "HUB_TEST_MINDBODY_PASSWORD"'
            ),
        ),
        key=lambda record: PERSON,
        partner_id=_only_user,
        creates=1,
    ),
    "clubready": Case(
        lambda: Partner(
            "clubready",
            ["user.save"],
            receives=["PROSPECT"],
            extras=[],
            adapter="clubready",
            make_fake=lambda: FakeClubReady(TOKEN),
            settings=_settings(),
        ),
        key=lambda record: record,  # ClubReady keeps the hub UUID as ExternalId
        partner_id=lambda fake, record: fake.partner_ids[record],
        creates=1,
    ),
    "abc_datatrak": Case(
        lambda: Partner(
            "abc",
            ["user.save"],
            receives=["PROSPECT"],
            extras=[],
            adapter="abc_datatrak",
            make_fake=lambda: FakeAbcDataTrak("hub-app", TOKEN),
            settings=_settings(', app_id = "hub-app"'),
        ),
        key=lambda record: PERSON,
        partner_id=_only_user,
        creates=1,
    ),
    "generic_json": Case(
        lambda: Partner("crm", ["user.save"], settings=_settings()),
        key=lambda record: record,
        partner_id=lambda fake, record: fake.partner_ids[record],
        creates=2,
    ),
    "connector_xml": Case(
        lambda: Partner(
            "connector",
            ["user.save"],
            adapter="connector_xml",
            make_fake=lambda: FakeConnectorPartner(TOKEN, "hub-at-connector"),
            settings=_settings(', identifier = "hub-at-connector"'),
        ),
        key=lambda record: record,  # the recordID the adapter sends is the hub UUID
        partner_id=lambda fake, record: fake.partner_ids[record],
        creates=2,
    ),
}


@pytest.fixture(autouse=True)
def mindbody_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_TEST_MINDBODY_PASSWORD", PASSWORD)


async def _settled(hub: DeliveryHub, partner: str, record: str) -> list[dict[str, Any]]:
    """The record's attempts at `partner`, once the last one is not to be retried."""

    async def settled() -> list[dict[str, Any]]:
        rows = await hub.pool.fetch(
            "SELECT outcome, error FROM delivery_attempts"
            " WHERE partner = $1 AND uuid = $2 ORDER BY id",
            partner,
            uuid.UUID(record),
        )
        done = rows and rows[-1]["outcome"] in ("delivered", "permanent")
        return [dict(r) for r in rows] if done else []

    return await eventually(settled, within=40)  # type: ignore[no-any-return]


@pytest.mark.parametrize("api", list(CASES))
async def test_a_create_answered_after_the_timeout_is_not_made_twice(
    start_hub: StartHub, api: str
) -> None:
    case = CASES[api]
    partner = case.partner()
    hub = await start_hub([partner])
    fake = hub.server(partner.name)
    fake.answer_late(LATE)
    record = await hub.post("user", prospect_xml("R-1"))

    rows = await _settled(hub, partner.name, record)
    assert fake.creates == {case.key(record): case.creates}
    assert [r["outcome"] for r in rows] == ["transient", "delivered"]
    assert f"no answer within {TIMEOUT} s" in rows[0]["error"]
    assert len(fake.users) == 1
    stored = await hub.pool.fetchval(
        "SELECT partner_id FROM deliveries WHERE partner = $1 AND uuid = $2",
        partner.name,
        uuid.UUID(record),
    )
    assert stored == case.partner_id(fake, record)
    if isinstance(fake, FakeGenericJson):  # the same delivery repeated, not a new one
        creates = [r for r in fake.requests if r.create is not None]
        assert len({r.headers["Idempotency-Key"] for r in creates}) == 1
