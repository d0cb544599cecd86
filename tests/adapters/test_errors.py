"""Both adapters classify their partner's failures alike, as the partner contract says."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.base import AdapterConfigError, PermanentPartnerError, TransientPartnerError
from tests.adapters.conftest import CLUB, Partner, outbound


@pytest.mark.parametrize("status", [408, 425, 500, 502, 503, 504])
async def test_transient_statuses(partner: Partner, status: int) -> None:
    partner.fake.fail_next(1, status=status)
    with pytest.raises(TransientPartnerError) as caught:
        await partner.adapter.save_user(CLUB, outbound())
    assert caught.value.status == status
    assert caught.value.retry_after is None
    assert partner.fake.users == {}


@pytest.mark.parametrize(("status", "retry_after"), [(429, 1.5), (503, 7.0), (429, 0.0)])
async def test_retry_after_is_passed_on(partner: Partner, status: int, retry_after: float) -> None:
    partner.fake.fail_next(1, status=status, retry_after=retry_after)
    with pytest.raises(TransientPartnerError) as caught:
        await partner.adapter.save_user(CLUB, outbound())
    assert (caught.value.status, caught.value.retry_after) == (status, retry_after)


@pytest.mark.parametrize("status", [400, 404, 409, 422, 301])
async def test_permanent_statuses_keep_the_answer(partner: Partner, status: int) -> None:
    partner.fake.fail_next(1, status=status, body="lastName is too long")
    with pytest.raises(PermanentPartnerError) as caught:
        await partner.adapter.save_user(CLUB, outbound())
    assert caught.value.status == status
    assert caught.value.answer == "lastName is too long"
    assert caught.value.message.startswith("crm: ")
    assert f"answered {status}" in caught.value.message


async def test_a_partner_that_is_down_is_transient_and_then_works(partner: Partner) -> None:
    partner.fake.down = True
    adapter = partner.adapter
    with pytest.raises(TransientPartnerError) as caught:
        await adapter.save_user(CLUB, outbound())
    assert caught.value.status == 503
    partner.fake.down = False
    assert (await adapter.save_user(CLUB, outbound())).partner_id
    assert partner.fake.creates[str(outbound().hub_uuid)] == 1


async def test_fail_next_counts_requests(partner: Partner) -> None:
    partner.fake.fail_next(2, status=500)
    adapter = partner.adapter
    for _ in range(2):
        with pytest.raises(TransientPartnerError):
            await adapter.save_user(CLUB, outbound())
    await adapter.save_user(CLUB, outbound())
    assert [r.status for r in partner.fake.requests][:2] == [500, 500]
    assert 200 <= partner.fake.requests[2].status <= 299


async def test_connection_refused_is_transient(partner: Partner) -> None:
    adapter = partner.adapter
    await partner.fake.stop()
    with pytest.raises(TransientPartnerError) as caught:
        await adapter.save_user(CLUB, outbound())
    assert caught.value.status is None
    assert "crm:" in caught.value.message


async def test_no_answer_within_the_timeout_is_transient(partner: Partner) -> None:
    partner.fake.delay = 0.5
    with pytest.raises(TransientPartnerError) as caught:
        await partner.build(timeout=0.1).save_user(CLUB, outbound())
    assert "no answer within 0.1 s" in caught.value.message


async def test_a_wrong_key_is_permanent(partner: Partner) -> None:
    adapter = partner.build(env={"PARTNER_KEY": "not-the-token"})
    with pytest.raises(PermanentPartnerError) as caught:
        await adapter.save_user(CLUB, outbound())
    assert caught.value.status == 401


async def test_an_endpoint_the_partner_lacks_is_permanent(partner: Partner) -> None:
    partner.fake.capabilities = frozenset()
    with pytest.raises(PermanentPartnerError) as caught:
        await partner.adapter.save_user(CLUB, outbound())
    assert caught.value.status == 404


@pytest.mark.parametrize("settings", [{"key_env": None}, {"key_env": "NOT_SET"}])
def test_a_missing_key_is_refused_at_construction(
    partner: Partner, settings: dict[str, object]
) -> None:
    with pytest.raises(AdapterConfigError, match=r"key_env|NOT_SET"):
        partner.build(**settings)


def test_a_key_file_is_read(partner: Partner, tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("partner-token\n")
    assert partner.build(env={"PARTNER_KEY_FILE": str(path)}).config.secret() == "partner-token"


@pytest.mark.parametrize("timeout", ["2", True, 0, -1, float("nan")])
def test_a_bad_timeout_is_refused(partner: Partner, timeout: object) -> None:
    with pytest.raises(AdapterConfigError, match="timeout"):
        partner.build(timeout=timeout)
