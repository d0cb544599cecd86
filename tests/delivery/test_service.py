"""The delivery service refuses at start a provider its adapter cannot use."""

from __future__ import annotations

import tomllib

import aiohttp
import pytest

from hub.delivery.service import build_adapter
from hub.errors import ConfigError
from hub.tenancy import parse
from tests.delivery.conftest import Partner
from tests.fixtures_tenancy import ENV, TENANCY_TOML


def tenancy_with(partner_toml: str):  # type: ignore[no-untyped-def]
    return parse(tomllib.loads(partner_toml + TENANCY_TOML), ENV)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda t: t, "HUB_TEST_PARTNER_TOKEN"),  # the secret's variable is not set
        (lambda t: t.replace('adapter = "generic_json"', 'adapter = "nosuch"'), "nosuch"),
        (lambda t: t.replace("['user.save']", "['staff.list']"), "user.save"),
    ],
)
async def test_unusable_settings_are_refused_at_start(
    change,
    named: str,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.delenv("HUB_TEST_PARTNER_TOKEN", raising=False)
    if named != "HUB_TEST_PARTNER_TOKEN":
        monkeypatch.setenv("HUB_TEST_PARTNER_TOKEN", "t")
    tenancy = tenancy_with(change(Partner("crm", ["user.save"]).toml("http://127.0.0.1:1/api")))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ConfigError, match=named):
            build_adapter(tenancy.providers["crm"], tenancy, session)
