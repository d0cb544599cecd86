"""A hub process killed with SIGKILL in the middle of deliveries: delivered, not duplicated.

The fake counts every create call (a PUT without X-Partner-Id), so the creates
the killed hub sent and never heard answered show up again after the restart:
that repeat is allowed once, as the same delivery; anything more is not.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import replace
from pathlib import Path

import aiohttp

from adapters.fakes.generic_json import FakeGenericJson
from hub.settings import Settings
from hub.tenancy import load
from hub.wiring import topology
from tests.conftest import AMQP_URL, delete_topology, eventually
from tests.delivery.conftest import TOKEN, Partner, prospect_xml
from tests.fixtures_tenancy import INTOUCH_KEY, TENANCY_TOML
from tests.integration.test_process import environment, free_port, start_hub

AUTH = {"Authorization": f"Bearer {INTOUCH_KEY}", "Content-Type": "application/xml"}


async def test_sigkill_mid_delivery_loses_and_duplicates_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    fake = FakeGenericJson(TOKEN)
    url = await fake.start()
    fake.delay = 0.5  # deliveries are in flight when the kill comes
    partner = Partner("crm", ["user.save"])
    tenancy = tmp_path / "tenancy.toml"
    text = partner.toml(url) + TENANCY_TOML
    text = text.replace(
        'ids.clubos = { client = "A1", club = "77" }',
        'ids.clubos = { client = "A1", club = "77" }\n  ids.crm = { client = "C1", club = "K1" }',
    ).replace('provider = "clubos"', 'provider = "crm"')
    tenancy.write_text(text)
    port = free_port()
    env = environment(settings, port) | {
        "HUB_TENANCY_FILE": str(tenancy),
        "HUB_TEST_PARTNER_TOKEN": TOKEN,
        "HUB_RETRY_TIERS": "1,2",
    }
    first = await start_hub(env, port)
    second: asyncio.subprocess.Process | None = None
    try:
        async with aiohttp.ClientSession() as http:
            for n in range(20):
                body = prospect_xml(f"K-{n}")
                async with http.post(
                    f"http://127.0.0.1:{port}/connector/api/2011-11/user", data=body, headers=AUTH
                ) as r:
                    assert r.status == 200
        await eventually(lambda: asyncio.sleep(0, len(fake.requests) >= 3))
        first.send_signal(signal.SIGKILL)
        await first.wait()
        assert len(fake.users) < 20, "all delivered before the kill: nothing was tested"
        await asyncio.sleep(fake.delay + 0.5)  # the saves in flight reach the fake
        before = fake.creates.copy()

        second = await start_hub(env, port)
        await fake.wait_for_users(20, timeout=60)
        # The killed hub never heard some creates answered, so the new one sends them
        # again (at least once delivery; one user each, as the PUT is idempotent by UUID):
        # each as the same delivery (one Idempotency-Key), and none a third time.
        assert len(fake.creates) == 20
        assert set((fake.creates - before).values()) <= {1}
        assert len(set(fake.partner_ids.values())) == 20
        keys: dict[str, set[str]] = {}
        for request in fake.requests:
            if request.create is not None:
                keys.setdefault(request.create, set()).add(request.headers["Idempotency-Key"])
        assert {len(k) for k in keys.values()} == {1}
    finally:
        for process in (first, second):
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), 30)
        await fake.stop()
        shape = topology(replace(settings, retry_tiers=(1, 2)), load(tenancy, env))
        await delete_topology(AMQP_URL, shape)
