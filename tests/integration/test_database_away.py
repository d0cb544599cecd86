"""With the database away, saves still work (no database on that path); reads say DATABASE."""

from __future__ import annotations

from dataclasses import replace

import aiohttp
from lxml import etree

from hub.ingress.app import BASE, IngressService
from hub.settings import Settings
from hub.tenancy import Tenancy
from tests.fixtures_tenancy import INTOUCH_ID, INTOUCH_KEY, user_xml

AUTH = {"Authorization": f"Bearer {INTOUCH_KEY}", "Content-Type": "application/xml"}


async def test_saves_need_only_the_broker(settings: Settings, tenancy: Tenancy) -> None:
    nowhere = replace(settings, database_url="postgresql://postgres@127.0.0.1:1/hub")
    ingress = IngressService(nowhere, tenancy)
    await ingress.start()
    try:
        url = f"http://127.0.0.1:{ingress.port}{BASE}/user"
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=user_xml("D-1"), headers=AUTH) as r:
                assert r.status == 200
            params = {"provider": INTOUCH_ID, "recordID": "D-1"}
            async with http.get(url, params=params, headers=AUTH) as r:
                answer = etree.fromstring(await r.read())
                assert (r.status, answer.findtext("reason")) == (500, "DATABASE")
            async with http.get(url.split("/connector")[0] + "/readyz") as r:
                assert (r.status, await r.json()) == (503, {"broker": True, "database": False})
    finally:
        await ingress.stop()
