"""The operators' dashboard in headless Chromium: log in with the operator token, find
the dead letters at a partner with the filter form, replay one with its button, and
see it reach the partner exactly once; the overview shows every partner.
"""

from __future__ import annotations

import asyncio

import aiohttp
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import Select
from yarl import URL

from tests.browser.conftest import OPS_TOKEN, READ_TOKEN, Browser
from tests.conftest import eventually
from tests.delivery.conftest import DeliveryHub
from tests.ops.conftest import MakeDead

DEAD_ROWS = (By.CSS_SELECTOR, "#dead-letters tbody tr[data-id]")


async def log_in(browser: Browser, token: str = OPS_TOKEN) -> None:
    """Open the dashboard, which sends us to the login form, and log in."""
    await browser.open("/")
    await browser.wait(seen.presence_of_element_located((By.ID, "login")))
    driver = browser.driver

    def submit() -> None:
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.ID, "login-submit").click()

    await browser.run(submit)
    await browser.wait(seen.presence_of_element_located((By.ID, "partners")))


async def test_replay_a_dead_letter_from_the_browser(
    hub: DeliveryHub, make_dead: MakeDead, browser: Browser
) -> None:
    uuids = await make_dead(["R-1", "R-2"])
    driver = browser.driver
    await log_in(browser)
    assert await browser.run(lambda: driver.find_element(By.ID, "role").text) == "operator"

    await browser.run(lambda: driver.find_element(By.LINK_TEXT, "Dead letters").click())
    await browser.wait(seen.presence_of_element_located((By.ID, "filter")))

    def filter_by_crm() -> None:
        Select(driver.find_element(By.ID, "filter-partner")).select_by_value("crm")
        driver.find_element(By.ID, "filter-submit").click()

    await browser.run(filter_by_crm)
    await browser.wait(seen.url_contains("partner=crm"))
    rows = await browser.run(driver.find_elements, *DEAD_ROWS)
    assert len(rows) == 2

    def replay_first() -> tuple[str, str]:
        row = driver.find_element(*DEAD_ROWS)
        dead_id = row.get_attribute("data-id")
        record = row.find_element(By.CSS_SELECTOR, "td:nth-child(4) a").text
        row.find_element(By.CSS_SELECTOR, "button.replay-button").click()
        assert dead_id is not None
        return dead_id, record

    dead_id, record = await browser.run(replay_first)
    assert record in uuids
    flash = await browser.wait(seen.visibility_of_element_located((By.ID, "flash")))
    assert "sent 1" in await browser.run(lambda: flash.text)
    # Back on the same filter (crm, dead): the replayed one has gone from it.
    assert "partner=crm" in await browser.run(lambda: driver.current_url)
    left = await browser.run(driver.find_elements, *DEAD_ROWS)
    assert [await browser.run(r.get_attribute, "data-id") for r in left] != [dead_id]
    assert len(left) == 1

    crm = hub.fake("crm")
    await eventually(lambda: _created(crm.creates, record), within=15)
    await asyncio.sleep(0.5)  # time for a second delivery, were there one
    assert crm.creates[record] == 1
    other = next(u for u in uuids if u != record)
    assert crm.creates.get(other, 0) == 0


async def test_overview_shows_both_partners(hub: DeliveryHub, browser: Browser) -> None:
    await log_in(browser)
    driver: WebDriver = browser.driver
    shown = await browser.run(
        lambda: [
            row.get_attribute("data-partner")
            for row in driver.find_elements(By.CSS_SELECTOR, "#partners tbody tr")
        ]
    )
    assert sorted(shown) == ["books", "crm"]
    queues = await browser.run(driver.find_elements, By.CSS_SELECTOR, "#queues tbody tr")
    assert queues


async def _created(creates: dict[str, int], record: str) -> bool:
    return creates.get(record, 0) >= 1


async def test_every_page_answers(hub: DeliveryHub, make_dead: MakeDead, dashboard: str) -> None:
    """Without a browser: each page renders, and the rules hold (login, roles, bad input)."""
    [record] = await make_dead(["R-9"])
    dead_id = await hub.pool.fetchval("SELECT id FROM dead_letters WHERE uuid = $1::uuid", record)
    operator = {"Authorization": f"Bearer {OPS_TOKEN}"}
    reader = {"Authorization": f"Bearer {READ_TOKEN}"}
    async with aiohttp.ClientSession(dashboard) as http:

        async def get(path: str, headers: dict[str, str] = operator) -> tuple[int, str]:
            async with http.get(path, headers=headers, allow_redirects=False) as answer:
                return answer.status, await answer.text()

        async with http.get("/dead?partner=crm", allow_redirects=False) as answer:
            assert answer.status == 303
            sent_to = URL(answer.headers["Location"])
        assert (sent_to.path, sent_to.query["next"]) == ("/login", "/dead?partner=crm")
        async with http.post(
            "/login", data={"token": OPS_TOKEN, "next": "/dead?partner=crm"}, allow_redirects=False
        ) as answer:
            assert (answer.status, answer.headers["Location"]) == (303, "/dead?partner=crm")
        for path, wanted in [
            ("/", "crm"),
            ("/dead?state=any", f'data-id="{dead_id}"'),
            ("/dead?record=intouch:R-9&partner=crm", 'class="replay-button"'),
            (f"/dead/{dead_id}", "lastName rejected"),  # the partner's answer
            (f"/trace?ref={record}", 'data-event="dead letter"'),
            ("/trace?ref=intouch:R-9", f'data-uuid="{record}"'),
            ("/trace", 'id="trace-form"'),
            ("/gaps", 'id="gaps"'),
        ]:
            status, text = await get(path)
            assert (status, wanted in text) == (200, True), (path, status, text[:2000])
        assert "replay-button" not in (await get("/dead", reader))[1]
        assert (await get("/dead/999999"))[0] == 404
        assert (await get("/trace?ref=nobody:R-0"))[0] == 404
        assert (await get("/dead?state=lost"))[0] == 400

        async with http.post("/login", data={"token": "wrong"}) as answer:
            assert answer.status == 401
            assert 'id="error"' in await answer.text()
        async with http.post(
            "/login", data={"token": READ_TOKEN, "next": "//evil.example/"}, allow_redirects=False
        ) as answer:
            assert (answer.status, answer.headers["Location"]) == (303, "/")
            cookie = answer.cookies["hub_ops_token"]
            assert cookie["httponly"]
            assert cookie["samesite"] == "Strict"
        async with http.post("/dead/replay", data={"id": str(dead_id)}, headers=reader) as answer:
            assert answer.status == 403
        async with http.post("/dead/replay", data={"id": "x"}, headers=operator) as answer:
            assert answer.status == 400
    assert (
        await hub.pool.fetchval("SELECT state FROM dead_letters WHERE id = $1", dead_id) == "dead"
    )
