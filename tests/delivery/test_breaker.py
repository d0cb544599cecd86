"""A partner that is down pauses its own deliveries, not its retries nor anyone else's."""

from __future__ import annotations

import asyncio
import time

from adapters.base import LocalBudget
from hub.delivery.breaker import Breaker, State
from tests.delivery.conftest import Partner, StartHub, prospect_xml


async def test_a_partner_that_is_down_does_not_burn_its_retries(start_hub: StartHub) -> None:
    hub = await start_hub(
        [Partner("down", ["user.save"], max_attempts=4), Partner("up", ["user.save"])],
        breaker_threshold=3,
        breaker_cooldown=2.0,
    )
    down, up = hub.fake("down"), hub.fake("up")
    down.down = True
    for n in range(5):
        await hub.post("user", prospect_xml(f"R-{n}"))
    await up.wait_for_users(5, timeout=20)  # the other partner is not held up

    await asyncio.sleep(3)
    before = len(down.requests)
    await asyncio.sleep(4)
    assert len(down.requests) - before <= 2  # only probes while the circuit is open
    assert await hub.pool.fetchval("SELECT max(attempt) FROM delivery_attempts") <= 2

    down.down = False
    await down.wait_for_users(5, timeout=40)
    assert await hub.pool.fetchval("SELECT count(*) FROM dead_letters") == 0
    assert max(down.creates.values()) == 1


async def test_breaker_opens_probes_and_closes() -> None:
    breaker = Breaker("p", threshold=2, cooldown=0.2)
    for _ in range(2):
        assert await breaker.admit() is False
        await breaker.failed(False, "503")
    assert breaker.state is State.OPEN
    started = time.monotonic()
    probe = await breaker.admit()
    assert probe is True
    assert time.monotonic() - started >= 0.15
    assert breaker.state is State.HALF_OPEN
    waiting = asyncio.create_task(breaker.admit())  # a second delivery waits for the probe
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await breaker.succeeded(probe)
    assert await asyncio.wait_for(waiting, 1) is False
    assert breaker.state is State.CLOSED


async def test_a_local_budget_spaces_calls() -> None:
    budget = LocalBudget(20)
    started = time.monotonic()
    for _ in range(6):
        await budget.wait_turn()
    assert time.monotonic() - started >= 0.24  # 5 intervals of 50 ms


async def test_rate_per_second_paces_a_partner(start_hub: StartHub) -> None:
    hub = await start_hub([Partner("slow", ["user.save"], rate_per_second=5)])
    started = time.monotonic()
    await asyncio.gather(*(hub.post("user", prospect_xml(f"R-{n}")) for n in range(5)))
    await hub.fake("slow").wait_for_users(5, timeout=20)
    assert time.monotonic() - started >= 0.8  # 5 calls, 4 intervals of 200 ms
