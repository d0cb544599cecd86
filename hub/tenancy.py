"""The tenancy file: who talks to the hub, for which clients and clubs.

Loaded once at start from TOML, checked against
`schemas/tenancy.schema.json` and then for what a schema cannot say (unique
names, identifiers and keys, ids that name known providers). An invalid file
is refused with a message naming the bad key. The result is immutable; this
module never touches the network.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import jsonschema

from hub.errors import ConfigError

T = TypeVar("T")

# Package data (schemas/tenancy.schema.json is a link to it, for readers of schemas/).
SCHEMA_FILE = Path(__file__).resolve().parent / "tenancy.schema.json"


@dataclass(frozen=True, slots=True)
class Provider:
    """A partner system: it sends records, receives them, or both."""

    name: str
    identifier: str
    key_sha256: str
    adapter: str | None = None
    url: str | None = None
    capabilities: frozenset[str] = frozenset()
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    max_attempts: int = 5
    concurrency: int = 8
    rate_per_second: float | None = None


@dataclass(frozen=True, slots=True)
class ClubIds:
    """A club's IDs in one provider's system."""

    client: str
    club: str


@dataclass(frozen=True, slots=True)
class Club:
    """One physical location of a client, with its IDs at each provider."""

    client: str
    name: str
    ids: Mapping[str, ClubIds]


@dataclass(frozen=True, slots=True)
class Subscription:
    """What one provider receives for a client's clubs."""

    provider: str
    receives: frozenset[str]
    extras: frozenset[str]


@dataclass(frozen=True, slots=True)
class Client:
    """A fitness chain: its clubs and who receives its records."""

    name: str
    clubs: tuple[Club, ...]
    subscriptions: tuple[Subscription, ...]


@dataclass(frozen=True, slots=True)
class Tenancy:
    """The whole file, with the lookups the hub needs on every request."""

    providers: Mapping[str, Provider]
    clients: Mapping[str, Client]
    _by_key: Mapping[str, Provider]
    _clubs: Mapping[tuple[str, str, str], Club]
    _named: Mapping[tuple[str, str], Club]

    def authenticate(self, key: str) -> Provider | None:
        """The provider whose API key this is, or None."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        provider = self._by_key.get(digest)
        # The dict lookup is by digest; compare again in constant time anyway.
        if provider and hmac.compare_digest(provider.key_sha256, digest):
            return provider
        return None

    def club(self, provider: str, client_id: str, club_id: str) -> Club | None:
        """The club that `provider` calls (client_id, club_id), if it is connected."""
        return self._clubs.get((provider, client_id, club_id))

    def named_club(self, client: str, club: str) -> Club | None:
        """The club by the names the tenancy gives the client and the club."""
        return self._named.get((client, club))

    def receivers(self) -> tuple[Provider, ...]:
        """The providers the hub delivers to (those with an adapter)."""
        return tuple(p for p in self.providers.values() if p.adapter)

    def clubs(self) -> Iterator[Club]:
        for client in self.clients.values():
            yield from client.clubs


def load(path: Path, env: Mapping[str, str] | None = None) -> Tenancy:
    """Read, check and index the tenancy file; ConfigError names what is wrong."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"tenancy file {path}: cannot read it: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"tenancy file {path}: not valid TOML: {exc}") from exc
    try:
        return parse(raw, os.environ if env is None else env)
    except ConfigError as exc:
        raise ConfigError(f"tenancy file {path}: {exc}") from exc


def parse(raw: Mapping[str, Any], env: Mapping[str, str]) -> Tenancy:
    """Check an already parsed tenancy document and build the Tenancy."""
    _check_schema(raw)
    providers = _unique((_provider(p, env) for p in raw["provider"]), "provider", lambda p: p.name)
    _unique(providers.values(), "provider identifier", lambda p: p.identifier)
    by_key = _unique(providers.values(), "provider key", lambda p: p.key_sha256)
    clients = _unique(
        (_client(i, c, providers) for i, c in enumerate(raw.get("client", []))),
        "client",
        lambda c: c.name,
    )
    clubs: dict[tuple[str, str, str], Club] = {}
    for client in clients.values():
        for club in client.clubs:
            for provider, ids in club.ids.items():
                key = (provider, ids.client, ids.club)
                if key in clubs:
                    raise ConfigError(
                        f"client {client.name!r} club {club.name!r}: ids.{provider} "
                        f"{{client={ids.client!r}, club={ids.club!r}}} are also those of "
                        f"club {clubs[key].name!r} of client {clubs[key].client!r}"
                    )
                clubs[key] = club
    return Tenancy(
        providers=MappingProxyType(providers),
        clients=MappingProxyType(clients),
        _by_key=MappingProxyType(by_key),
        _clubs=MappingProxyType(clubs),
        _named=MappingProxyType({(c.client, c.name): c for k in clients.values() for c in k.clubs}),
    )


def _check_schema(raw: Mapping[str, Any]) -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("; ".join(_describe(e) for e in errors))


def _describe(error: jsonschema.ValidationError) -> str:
    where = ""
    for part in error.absolute_path:
        where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
    message = error.message
    if error.validator == "oneOf":
        message = "give exactly one of key_sha256 and key_env"
    return f"{where or '(top)'}: {message}"


def _provider(raw: Mapping[str, Any], env: Mapping[str, str]) -> Provider:
    if "key_sha256" in raw:
        digest = str(raw["key_sha256"])
    else:
        var = str(raw["key_env"])
        key = env.get(var)
        if key is None and f"{var}_FILE" in env:
            key = Path(env[f"{var}_FILE"]).read_text(encoding="utf-8").strip()
        if not key:
            raise ConfigError(f"provider {raw['name']!r}: key_env {var!r} is not set")
        digest = hashlib.sha256(key.encode()).hexdigest()
    if raw.get("adapter") and "url" not in raw:
        raise ConfigError(f"provider {raw['name']!r}: adapter needs a url")
    return Provider(
        name=raw["name"],
        identifier=raw["identifier"],
        key_sha256=digest,
        adapter=raw.get("adapter"),
        url=raw.get("url"),
        capabilities=frozenset(raw.get("capabilities", ())),
        settings=MappingProxyType(dict(raw.get("settings", {}))),
        max_attempts=raw.get("max_attempts", 5),
        concurrency=raw.get("concurrency", 8),
        rate_per_second=raw.get("rate_per_second"),
    )


def _client(index: int, raw: Mapping[str, Any], providers: Mapping[str, Provider]) -> Client:
    name = raw["name"]
    clubs = []
    for i, club in enumerate(raw["club"]):
        for provider in club["ids"]:
            if provider not in providers:
                raise ConfigError(f"client[{index}].club[{i}].ids.{provider}: no such provider")
        ids = {p: ClubIds(str(v["client"]), str(v["club"])) for p, v in club["ids"].items()}
        clubs.append(Club(client=name, name=club["name"], ids=MappingProxyType(ids)))
    _unique(clubs, f"club of client {name!r}", lambda c: c.name)
    subscriptions = []
    for i, sub in enumerate(raw.get("subscription", [])):
        if sub["provider"] not in providers:
            raise ConfigError(f"client[{index}].subscription[{i}].provider: no such provider")
        subscriptions.append(
            Subscription(
                sub["provider"], frozenset(sub["receives"]), frozenset(sub.get("with", ()))
            )
        )
    _unique(subscriptions, f"subscription of client {name!r}", lambda s: s.provider)
    return Client(name=name, clubs=tuple(clubs), subscriptions=tuple(subscriptions))


def _unique(items: Iterable[T], what: str, key: Callable[[T], str]) -> dict[str, T]:
    seen: dict[str, T] = {}
    for item in items:
        k = key(item)
        if k in seen:
            raise ConfigError(f"{what} {k!r} is given twice")
        seen[k] = item
    return seen
