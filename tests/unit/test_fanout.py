"""Who receives what: subscriptions, categories, never the sender, never staff."""

from __future__ import annotations

import tomllib

from hub.connector.documents import Kind
from hub.delivery.fanout import category, targets
from hub.tenancy import parse

TENANCY = """
[[provider]]
name = "a"
identifier = "a"
key_sha256 = "{}"
adapter = "generic_json"
url = "http://a"
[[provider]]
name = "b"
identifier = "b"
key_sha256 = "{}"
adapter = "generic_json"
url = "http://b"
[[provider]]
name = "sender"
identifier = "s"
key_sha256 = "{}"
[[client]]
name = "acme"
  [[client.club]]
  name = "one"
  ids.a = {{ client = "1", club = "1" }}
  [[client.subscription]]
  provider = "a"
  receives = ["PROSPECT"]
  with = ["owner"]
  [[client.subscription]]
  provider = "b"
  receives = ["MEMBER", "FORMER_MEMBER"]
""".format("1" * 64, "2" * 64, "3" * 64)

tenancy = parse(tomllib.loads(TENANCY), {})


def user(user_type: str, status: str = "ACTIVE") -> dict[str, dict[str, str]]:
    return {"userInfo": {"userType": user_type, "userStatus": status}}


def test_categories() -> None:
    assert category(user("PROSPECT")) == "PROSPECT"
    assert category(user("MEMBER")) == "MEMBER"
    assert category(user("MEMBER", "INACTIVE")) == "FORMER_MEMBER"


def test_by_what_each_receives() -> None:
    assert [t.partner for t in targets(tenancy, "acme", Kind.USER, "sender", user("PROSPECT"))] == [
        "a"
    ]
    assert [t.partner for t in targets(tenancy, "acme", Kind.USER, "sender", user("MEMBER"))] == [
        "b"
    ]
    former = targets(tenancy, "acme", Kind.USER, "sender", user("MEMBER", "INACTIVE"))
    assert [t.partner for t in former] == ["b"]
    assert targets(tenancy, "acme", Kind.USER, "sender", user("PROSPECT"))[0].extras == {"owner"}


def test_never_back_to_the_sender_and_never_staff() -> None:
    assert targets(tenancy, "acme", Kind.USER, "a", user("PROSPECT")) == []
    assert targets(tenancy, "acme", Kind.STAFF, "sender", user("STAFF")) == []
    assert targets(tenancy, "acme", Kind.LEADSOURCE, "sender", {}) == []
    assert targets(tenancy, "nobody", Kind.USER, "sender", user("PROSPECT")) == []
