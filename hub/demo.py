"""`hub demo`: the hub with two fake partners, and sample records travelling through it.

Starts the demo tenancy's receiving partners as fake servers in this process
(generic_json "clubos" on :9102 and connector_xml "legacy" on :9101, seeded
with a staff member and a lead source), runs every hub component, posts a
staff record, a lead source and a prospect through the ingress as a partner
would, and prints what each partner received: the prospect with the owner
and lead source in that partner's own IDs. Then it keeps running, so that
more records can be posted with curl, until Ctrl-C.

For newcomers and demos only: it must never run against a real partner.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from adapters.fakes.connector_xml import FakeConnectorPartner
from adapters.fakes.generic_json import FakeGenericJson
from hub.delivery.service import DeliveryService
from hub.errors import ConfigError
from hub.ingress.app import BASE, IngressService
from hub.ops.service import OpsService
from hub.router import RouterService
from hub.runner import serve
from hub.settings import Settings
from hub.store import mappings
from hub.store.pool import create_pool
from hub.tenancy import Tenancy

SENDER_KEY = "demo-intouch-key"
PROSPECT = Path(__file__).resolve().parents[1] / "deploy" / "demo" / "prospect.xml"
STAFF_EMAIL = "sam.seller@acme.example"

STAFF = f"""<user><providerInfo><identifier>{{identifier}}</identifier><clientID>456</clientID>
<clubID>123</clubID><recordID>S-17</recordID></providerInfo><userInfo><firstname>Sam</firstname>
<lastname>Seller</lastname><userStatus>ACTIVE</userStatus><userType>STAFF</userType>
<email>{STAFF_EMAIL}</email></userInfo></user>"""

LEAD_SOURCE = """<leadSource><providerInfo><identifier>{identifier}</identifier>
<clientID>456</clientID><clubID>123</clubID><recordID>WALKIN</recordID></providerInfo>
<leadInfo><name>Walk-in</name><active>true</active></leadInfo></leadSource>"""


Fake = FakeGenericJson | FakeConnectorPartner


def fakes(tenancy: Tenancy) -> dict[str, Fake]:
    """The demo's partners, built from the tenancy's receivers and their secrets."""
    made: dict[str, Fake] = {}
    for provider in tenancy.receivers():
        secret = os.environ.get(str(provider.settings.get("key_env")), "")
        if not secret:
            raise ConfigError(f"demo: {provider.settings.get('key_env')} is not set")
        if provider.adapter == "generic_json":
            fake: Fake = FakeGenericJson(secret)
        elif provider.adapter == "connector_xml":
            fake = FakeConnectorPartner(secret, str(provider.settings["identifier"]))
        else:
            raise ConfigError(f"demo: no fake for adapter {provider.adapter!r}")
        made[provider.name] = fake
    return made


class DemoPartners:
    """The fake partners, as a component that starts first and stops last."""

    name = "demo partners"

    def __init__(self, tenancy: Tenancy) -> None:
        self.tenancy = tenancy
        self.fakes = fakes(tenancy)

    async def start(self) -> None:
        for name, fake in self.fakes.items():
            url = urlsplit(self.tenancy.providers[name].url or "")
            await fake.start(url.hostname or "127.0.0.1", url.port or 80)
            for club in self.tenancy.clubs():
                ids = club.ids.get(name)
                if isinstance(fake, FakeConnectorPartner) and ids is not None:
                    fake.add_staff(ids.client, ids.club, STAFF_EMAIL, "Sam", "Seller")
                elif ids is not None:
                    fake.add_staff(ids.club, STAFF_EMAIL, "Sam", "Seller")
            print(f"demo: fake partner {name!r} listens on {fake.url}")

    async def stop(self) -> None:
        for fake in self.fakes.values():
            await fake.stop()


class DemoTraffic:
    """Posts the sample records once the hub is up, and shows where they arrived."""

    name = "demo traffic"

    def __init__(self, settings: Settings, tenancy: Tenancy, partners: DemoPartners) -> None:
        self._settings = settings
        self._tenancy = tenancy
        self._partners = partners
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _forget_partner_lists(self) -> None:
        """The fakes start empty each run: the lists cached from an earlier run are wrong."""
        pool = await create_pool(self._settings.database_url, self._settings.namespace, max_size=1)
        try:
            await mappings.forget(pool, list(self._partners.fakes))
        finally:
            await pool.close()

    async def _run(self) -> None:
        address = self._settings.ingress_addr
        base = f"http://{address.host}:{address.port}{BASE}"
        identifier = self._tenancy.providers["intouch"].identifier
        # A new prospect each run: an unchanged re-save would go to nobody.
        run = time.strftime("%Y%m%d-%H%M%S")
        prospect = PROSPECT.read_bytes().replace(b"R-000001", f"R-{run}".encode())
        await self._forget_partner_lists()
        headers = {"Authorization": f"Bearer {SENDER_KEY}", "Content-Type": "application/xml"}
        async with aiohttp.ClientSession() as http:
            for path, body in (
                ("staff", STAFF.format(identifier=identifier).encode()),
                ("leadsource", LEAD_SOURCE.format(identifier=identifier).encode()),
                ("user", prospect),
            ):
                async with http.post(f"{base}/{path}", data=body, headers=headers) as answer:
                    print(f"demo: POST /{path} -> {answer.status} {await answer.text()}")
                await asyncio.sleep(0.5)  # let the router store staff before the prospect
        for name, fake in self._partners.fakes.items():
            users = await fake.wait_for_users(1, timeout=30)
            print(f"demo: {name!r} received {users[-1]}")
        ops = self._settings.ops_addr
        print(
            f"demo: the operators' dashboard: http://{ops.host}:{ops.port}/ (token: HUB_OPS_TOKEN"
            " in deploy/demo/hub.env); try `hub status`, `hub trace intouch:R-000001`"
        )
        print(
            "demo: post more with\n"
            f"  curl -sS -H 'Authorization: Bearer {SENDER_KEY}' -H 'Content-Type: application/xml'"
            f" --data-binary @deploy/demo/prospect.xml {base}/user"
        )


async def demo(settings: Settings, tenancy: Tenancy) -> None:
    partners = DemoPartners(tenancy)
    await serve(
        [
            partners,
            RouterService(settings, tenancy),
            DeliveryService(settings, tenancy),
            IngressService(settings, tenancy),
            OpsService(settings, tenancy),
            DemoTraffic(settings, tenancy, partners),
        ]
    )
