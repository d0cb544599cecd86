"""adapters.registry: adapters by name through the `hub.adapters` entry points."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

import aiohttp
import pytest

from adapters import registry
from adapters.base import AdapterConfigError, ClubRef, OutboundUser, SaveResult
from adapters.connector_xml import ConnectorXmlAdapter
from adapters.generic_json import GenericJsonAdapter
from tests.adapters.conftest import CONNECTOR_ONLY, IDENTIFIER, config


class ThirdPartyAdapter(GenericJsonAdapter):
    """Stands for an adapter another package installs."""

    name = "third_party"

    async def save_user(self, club: ClubRef, user: OutboundUser) -> SaveResult:
        return SaveResult("x")


def _installed(monkeypatch: pytest.MonkeyPatch, *points: tuple[str, str]) -> None:
    real = list(entry_points(group=registry.GROUP))
    extra = [EntryPoint(name, value, registry.GROUP) for name, value in points]
    monkeypatch.setattr(registry, "entry_points", lambda group: [*real, *extra])


def test_both_adapters_are_installed_by_name() -> None:
    assert registry.get("generic_json") is GenericJsonAdapter
    assert registry.get("connector_xml") is ConnectorXmlAdapter
    assert {"connector_xml", "generic_json"} <= set(registry.names())


async def test_create_builds_the_named_adapter(session: aiohttp.ClientSession) -> None:
    adapter = registry.create(
        config("http://partner.invalid", CONNECTOR_ONLY, identifier=IDENTIFIER),
        "connector_xml",
        session,
    )
    assert isinstance(adapter, ConnectorXmlAdapter)
    assert adapter.session is session


def test_an_unknown_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(AdapterConfigError) as caught:
        registry.get("soap_xml")
    assert "unknown adapter 'soap_xml'" in str(caught.value)
    assert "connector_xml, generic_json" in str(caught.value)


async def test_create_refuses_settings_the_adapter_cannot_use(
    session: aiohttp.ClientSession,
) -> None:
    with pytest.raises(AdapterConfigError, match=r"settings\.identifier"):
        registry.create(config("http://partner.invalid", CONNECTOR_ONLY), "connector_xml", session)


def test_a_third_party_adapter_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    _installed(monkeypatch, ("third_party", f"{__name__}:ThirdPartyAdapter"))
    assert registry.get("third_party") is ThirdPartyAdapter
    with pytest.raises(AdapterConfigError, match="third_party"):
        registry.get("nope")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("adapters.no_such_module:Adapter", "cannot be loaded"),
        ("adapters.generic_json:NoSuchClass", "cannot be loaded"),
        ("adapters.generic_json:user_json", "not a concrete Adapter class"),
        ("adapters.base:Adapter", "not a concrete Adapter class"),
    ],
)
def test_an_entry_point_that_is_no_adapter_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    _installed(monkeypatch, ("broken", value))
    with pytest.raises(AdapterConfigError, match=problem):
        registry.get("broken")


def test_a_name_installed_twice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _installed(monkeypatch, ("generic_json", f"{__name__}:ThirdPartyAdapter"))
    with pytest.raises(AdapterConfigError, match="installed more than once"):
        registry.get("generic_json")
