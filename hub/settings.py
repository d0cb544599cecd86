"""The hub's settings: read once from the environment into a frozen object.

Only the CLI (the edge) calls `Settings.from_env()`; everything else gets the
object passed in. A secret may be given directly or as a file named by the
same variable with `_FILE` appended (Docker and Kubernetes secrets). This
module must never open connections or read the tenancy file.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hub.broker.topology import DEFAULT_MAX_LENGTH, DEFAULT_TIERS, parse_tiers
from hub.errors import ConfigError

_NAMESPACE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_SIZE = re.compile(r"^(\d+)\s*(k|kib|m|mib)?$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Address:
    """A host and port to listen on."""

    host: str
    port: int

    @classmethod
    def parse(cls, name: str, value: str) -> Address:
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ConfigError(f"{name}: {value!r} is not HOST:PORT")
        return cls(host.strip("[]") or "0.0.0.0", int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the hub reads from its environment."""

    amqp_urls: tuple[str, ...] = ("amqp://guest:guest@127.0.0.1:5672/",)
    database_url: str = "postgresql://postgres@127.0.0.1:5432/hub"
    tenancy_file: Path = Path("deploy/demo/tenancy.toml")
    namespace: str = "hub"
    ingress_addr: Address = field(default_factory=lambda: Address("127.0.0.1", 8080))
    max_body: int = 64 * 1024
    publish_timeout: float = 5.0
    # How long the ingress lets a lone save wait for others to share its inbox message:
    # at moderate rates it multiplies the batch every hop gets (0: publish at once).
    ingress_linger: float = 0.015
    # Saves one ingress process lets wait for a publish; past it a save is answered 503
    # at once. Far above what waits under full load (a few hundred), and small enough
    # that even bodies of HUB_MAX_BODY stay within a few hundred MB (README, Settings).
    ingress_max_waiting: int = 2000
    # Messages a work queue (inbox, deliver.*, retry tiers) holds before the broker
    # refuses publishes (reject-publish: the ingress answers 503); dead letters: 10 times.
    # None (HUB_QUEUE_MAX_LENGTH=0): no bound, the queues of a hub deployed before it.
    queue_max_length: int | None = DEFAULT_MAX_LENGTH
    router_prefetch: int = 64
    shutdown_grace: float = 10.0
    retry_tiers: tuple[int, ...] = DEFAULT_TIERS
    mapping_ttl: float = 3600.0
    breaker_threshold: int = 5
    breaker_cooldown: float = 10.0
    # The operators' port (ops API, /metrics, dashboard) and its tokens: the operator
    # token may replay and purge, the read token only reads. No token: no access.
    ops_addr: Address = field(default_factory=lambda: Address("127.0.0.1", 8081))
    ops_token: str | None = None
    ops_read_token: str | None = None
    # A role run alone (ingress, router, deliver) serves its own counters here (none: off).
    metrics_addr: Address | None = None
    # RabbitMQ's management API (optional: unacked counts and rates in `hub status`);
    # empty: port 15672 of each AMQP node.
    management_urls: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        base = cls()
        namespace = env.get("HUB_NAMESPACE", base.namespace)
        if not _NAMESPACE.match(namespace):
            raise ConfigError(
                f"HUB_NAMESPACE: {namespace!r} must match {_NAMESPACE.pattern} "
                "(it prefixes queues and names a PostgreSQL schema)"
            )
        amqp = _secret(env, "HUB_AMQP_URL") or ",".join(base.amqp_urls)
        return cls(
            amqp_urls=_urls(amqp),
            database_url=_secret(env, "HUB_DATABASE_URL") or base.database_url,
            tenancy_file=Path(env.get("HUB_TENANCY_FILE", str(base.tenancy_file))),
            namespace=namespace,
            ingress_addr=Address.parse(
                "HUB_INGRESS_ADDR", env.get("HUB_INGRESS_ADDR", str(base.ingress_addr))
            ),
            max_body=_size(env.get("HUB_MAX_BODY"), base.max_body),
            publish_timeout=_positive(env, "HUB_PUBLISH_TIMEOUT", base.publish_timeout),
            ingress_linger=_linger(env, "HUB_INGRESS_LINGER", base.ingress_linger),
            ingress_max_waiting=_whole(env, "HUB_INGRESS_MAX_WAITING", base.ingress_max_waiting),
            queue_max_length=_whole(env, "HUB_QUEUE_MAX_LENGTH", DEFAULT_MAX_LENGTH, least=0)
            or None,
            router_prefetch=int(_positive(env, "HUB_ROUTER_PREFETCH", base.router_prefetch)),
            shutdown_grace=_positive(env, "HUB_SHUTDOWN_GRACE", base.shutdown_grace),
            retry_tiers=_tiers(env.get("HUB_RETRY_TIERS"), base.retry_tiers),
            mapping_ttl=_positive(env, "HUB_MAPPING_TTL", base.mapping_ttl),
            breaker_threshold=int(_positive(env, "HUB_BREAKER_THRESHOLD", base.breaker_threshold)),
            breaker_cooldown=_positive(env, "HUB_BREAKER_COOLDOWN", base.breaker_cooldown),
            ops_addr=Address.parse("HUB_OPS_ADDR", env.get("HUB_OPS_ADDR", str(base.ops_addr))),
            ops_token=_secret(env, "HUB_OPS_TOKEN") or None,
            ops_read_token=_secret(env, "HUB_OPS_READ_TOKEN") or None,
            metrics_addr=(
                Address.parse("HUB_METRICS_ADDR", env["HUB_METRICS_ADDR"])
                if env.get("HUB_METRICS_ADDR")
                else None
            ),
            management_urls=_urls(_secret(env, "HUB_MANAGEMENT_URL") or ""),
        )


def _urls(value: str) -> tuple[str, ...]:
    """A comma-separated list of URLs."""
    return tuple(u.strip() for u in value.split(",") if u.strip())


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """`NAME`, or the contents of the file that `NAME_FILE` names."""
    if name in env:
        return env[name]
    path = env.get(f"{name}_FILE")
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from exc


def _size(value: str | None, default: int) -> int:
    if value is None:
        return default
    match = _SIZE.match(value.strip())
    if not match or int(match[1]) == 0:
        raise ConfigError(f"HUB_MAX_BODY: {value!r} is not a size such as 65536 or 64KiB")
    unit = (match[2] or "").lower()
    return int(match[1]) * {"": 1, "k": 1024, "kib": 1024, "m": 1 << 20, "mib": 1 << 20}[unit]


def _tiers(value: str | None, default: tuple[int, ...]) -> tuple[int, ...]:
    if value is None:
        return default
    try:
        return parse_tiers(value)
    except ValueError as exc:
        raise ConfigError(f"HUB_RETRY_TIERS: {exc}") from exc


def _linger(env: Mapping[str, str], name: str, default: float) -> float:
    """Seconds from 0 to below 1."""
    return _number(env, name, default, lambda v: 0 <= v < 1, "seconds from 0 to below 1")


def _whole(env: Mapping[str, str], name: str, default: int, least: int = 1) -> int:
    """A whole number from `least` up (a count: 2.5 saves means nothing)."""
    return int(
        _number(
            env,
            name,
            default,
            lambda v: v >= least and v.is_integer(),
            f"a whole number from {least} up",
        )
    )


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, lambda v: v > 0, "a positive number")


def _number(
    env: Mapping[str, str], name: str, default: float, ok: Callable[[float], bool], must: str
) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not ok(value):
        raise ConfigError(f"{name}: {raw!r} must be {must}")
    return value
