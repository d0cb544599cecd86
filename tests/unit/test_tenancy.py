"""The tenancy file: what it accepts, and how it names what it refuses."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any

import pytest

from hub.errors import ConfigError
from hub.tenancy import load, parse
from tests.fixtures_tenancy import CLUBOS_KEY, ENV, INTOUCH_KEY, TENANCY_TOML

DEMO = Path(__file__).parents[2] / "deploy" / "demo" / "tenancy.toml"


def raw() -> dict[str, Any]:
    return tomllib.loads(TENANCY_TOML)


def test_keys_and_clubs_are_looked_up() -> None:
    tenancy = parse(raw(), ENV)
    intouch = tenancy.authenticate(INTOUCH_KEY)
    assert intouch is not None
    assert intouch.name == "intouch"
    clubos = tenancy.authenticate(CLUBOS_KEY)  # key_env
    assert clubos is not None
    assert clubos.name == "clubos"
    assert tenancy.authenticate("nope") is None
    club = tenancy.club("intouch", "456", "124")
    assert club is not None
    assert (club.client, club.name) == ("acme", "uptown")
    assert tenancy.club("clubos", "456", "124") is None
    subscription = tenancy.clients["acme"].subscriptions[0]
    assert subscription.extras == frozenset({"owner"})


def test_the_demo_file_loads() -> None:
    tenancy = load(DEMO)
    assert tenancy.authenticate("demo-intouch-key") is not None


def edit(change: Any) -> dict[str, Any]:
    document = raw()
    change(document)
    return document


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d["provider"][0].update(name="In Touch"), "provider[0].name"),
        (lambda d: d["provider"][0].update(colour="red"), "colour"),
        (lambda d: d["provider"][0].pop("key_sha256"), "key_sha256 and key_env"),
        (lambda d: d["provider"][0].update(key_sha256="abc"), "provider[0].key_sha256"),
        (lambda d: d["provider"][1].update(key_env="UNSET_VAR"), "UNSET_VAR"),
        (lambda d: d["provider"][1].update(name="intouch"), "'intouch' is given twice"),
        (
            lambda d: d["client"][0]["club"][0]["ids"].update(nobody={"client": "1", "club": "2"}),
            "ids.nobody: no such provider",
        ),
        (
            lambda d: d["client"][0]["subscription"][0].update(receives=["STAFF"]),
            "client[0].subscription[0].receives[0]",
        ),
        (
            lambda d: d["client"][0]["club"][1]["ids"]["intouch"].update(club="123"),
            "are also those of club 'downtown'",
        ),
        (lambda d: d["provider"][0].update(adapter="generic_json"), "adapter needs a url"),
    ],
)
def test_a_bad_file_is_refused_naming_the_key(change: Any, named: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse(edit(change), ENV)
    assert named in str(refused.value)


def test_a_file_that_is_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("[[provider]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(path)


def test_key_hash_is_sha256_hex() -> None:
    tenancy = parse(raw(), ENV)
    assert tenancy.providers["clubos"].key_sha256 == hashlib.sha256(CLUBOS_KEY.encode()).hexdigest()
