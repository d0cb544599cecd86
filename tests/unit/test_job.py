"""Delivery job messages: one job or several of one partner, and what is refused."""

from __future__ import annotations

import uuid

import pytest

from hub.delivery import job
from hub.delivery.job import DeliveryJob
from hub.errors import PoisonMessage

A = DeliveryJob(uuid.UUID(int=1), "crm", 3)
B = DeliveryJob(uuid.UUID(int=2), "crm", 1)


def test_one_job_round_trips_with_its_own_id() -> None:
    assert job.decode(A.encode()) == [A]
    assert job.message_id([A]) == A.message_id == f"{A.uuid}:crm:3"


def test_several_jobs_of_one_partner_are_one_message() -> None:
    body = job.encode([A, B])
    assert job.decode(body) == [A, B]
    assert job.message_id([A, B]) == f"{A.message_id}+1"


def test_jobs_of_two_partners_are_not_one_message() -> None:
    with pytest.raises(ValueError, match="one partner"):
        job.encode([A, DeliveryJob(B.uuid, "other", 1)])
    with pytest.raises(ValueError, match="one partner"):
        job.encode([])


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"v": 2, "uuid": "00000000-0000-0000-0000-000000000001", "partner": "crm", "version": 1}',
        b'{"v": 1, "uuid": "00000000-0000-0000-0000-000000000001", "partner": "crm", "version": 0}',
        b'{"v": 1, "uuid": "00000000-0000-0000-0000-000000000001", "partner": "crm",'
        b' "version": true}',
        b'{"v": 1, "uuid": "not-a-uuid", "partner": "crm", "version": 1}',
        b'{"v": 1, "partner": "crm", "jobs": []}',
        b'{"v": 1, "partner": "crm", "jobs": {"uuid": "x"}}',
        b'{"v": 1, "uuid": "00000000-0000-0000-0000-000000000001", "version": 1}',
    ],
)
def test_what_is_not_a_job_message_is_poison(body: bytes) -> None:
    with pytest.raises(PoisonMessage, match="not a delivery job"):
        job.decode(body)
