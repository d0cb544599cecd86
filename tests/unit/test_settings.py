"""Settings from the environment: defaults, parsing, secrets from files."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.broker.topology import Topology
from hub.errors import ConfigError
from hub.settings import Address, Settings


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.namespace == "hub"
    assert settings.ingress_addr == Address("127.0.0.1", 8080)
    assert settings.max_body == 64 * 1024
    assert settings.ingress_linger == 0.015
    assert settings.ingress_max_waiting == 2000
    assert settings.queue_max_length == 100_000
    assert settings.management_urls == ()


def test_values_and_a_node_list() -> None:
    settings = Settings.from_env(
        {
            "HUB_AMQP_URL": "amqp://a:5672/, amqp://b:5672/",
            "HUB_NAMESPACE": "t_1",
            "HUB_INGRESS_ADDR": ":9000",
            "HUB_MAX_BODY": "128KiB",
            "HUB_INGRESS_LINGER": "0",
            "HUB_INGRESS_MAX_WAITING": "64",
            "HUB_QUEUE_MAX_LENGTH": "5",
            "HUB_MANAGEMENT_URL": "http://u:p@a:15672/api,http://u:p@b:15672/api",
        }
    )
    assert settings.amqp_urls == ("amqp://a:5672/", "amqp://b:5672/")
    assert settings.ingress_linger == 0
    assert (settings.ingress_max_waiting, settings.queue_max_length) == (64, 5)
    assert settings.management_urls == ("http://u:p@a:15672/api", "http://u:p@b:15672/api")
    assert settings.ingress_addr == Address("0.0.0.0", 9000)
    assert settings.max_body == 128 * 1024


def test_no_queue_bound_for_queues_declared_without_one() -> None:
    """HUB_QUEUE_MAX_LENGTH=0: no queue is bounded."""
    settings = Settings.from_env({"HUB_QUEUE_MAX_LENGTH": "0"})
    assert settings.queue_max_length is None
    shape = Topology("ns", partners=("crm",), max_length=settings.queue_max_length)
    assert not any("x-max-length" in q.arguments() for q in shape.queues())


def test_a_secret_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "db"
    secret.write_text("postgresql://u:p@db/hub\n")
    settings = Settings.from_env({"HUB_DATABASE_URL_FILE": str(secret)})
    assert settings.database_url == "postgresql://u:p@db/hub"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HUB_NAMESPACE", "Has-Caps"),
        ("HUB_INGRESS_ADDR", "localhost"),
        ("HUB_MAX_BODY", "lots"),
        ("HUB_PUBLISH_TIMEOUT", "-1"),
        ("HUB_INGRESS_LINGER", "-0.1"),
        ("HUB_INGRESS_LINGER", "2"),
        ("HUB_INGRESS_MAX_WAITING", "0"),
        ("HUB_INGRESS_MAX_WAITING", "2.5"),
        ("HUB_QUEUE_MAX_LENGTH", "lots"),
        ("HUB_QUEUE_MAX_LENGTH", "-1"),
        ("HUB_DATABASE_URL_FILE", "/nonexistent/secret"),
    ],
)
def test_a_bad_value_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})
