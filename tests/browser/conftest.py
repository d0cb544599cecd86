"""The dashboard in a real browser: Debian's headless Chromium driven by Selenium, against
a running hub with dead letters (the fixtures of `tests/ops`) and its ops port.

Chromium and its driver are installed by `deploy/setup.sh --browser` (what `make test`
runs); the tests fail, not skip, without them. Selenium blocks: call it through
`Browser.run` (a thread), so that the hub, in the test's event loop, keeps serving.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from hub.ops.service import OpsService
from hub.settings import Address
from tests.delivery.conftest import DeliveryHub
from tests.ops.conftest import (  # noqa: F401  (fixtures used by the tests here)
    OPS_TOKEN,
    READ_TOKEN,
    hub,
    make_dead,
    partner_env,
    start_hub,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
T = TypeVar("T")


class Browser:
    """A headless Chromium; `run` calls Selenium in a thread."""

    def __init__(self, driver: WebDriver, base: str) -> None:
        self.driver = driver
        self.base = base

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(call, *args)

    async def open(self, path: str) -> None:
        await self.run(self.driver.get, self.base + path)

    async def wait(self, until: Callable[[WebDriver], T], within: float = 10) -> T:
        """Until `until(driver)` is truthy (polled in the thread)."""
        return await self.run(WebDriverWait(self.driver, within, 0.05).until, until)


@pytest.fixture
def driver() -> Iterator[WebDriver]:
    for path in (CHROMIUM, CHROMEDRIVER):
        assert path.exists(), f"no {path}: run deploy/setup.sh --browser (make test does)"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1400,1000")
    started = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield started
    finally:
        started.quit()


@pytest.fixture
async def dashboard(hub: DeliveryHub) -> AsyncIterator[str]:  # noqa: F811
    """The ops port (API and dashboard) on the hub's namespace: its base URL."""
    assert hub.tenancy is not None
    service = OpsService(replace(hub.settings, ops_addr=Address("127.0.0.1", 0)), hub.tenancy)
    await service.start()
    try:
        yield f"http://127.0.0.1:{service.port}"
    finally:
        await service.stop()


@pytest.fixture
def browser(driver: WebDriver, dashboard: str) -> Browser:
    return Browser(driver, dashboard)
