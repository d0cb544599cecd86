"""What the tests send: the tenancy (two providers in one client) and documents."""

from __future__ import annotations

import datetime
import hashlib
import uuid

from hub.connector.documents import Body, Kind
from hub.message import Inbound
from hub.records import hub_uuid

INTOUCH_KEY = "test-intouch-key"
CLUBOS_KEY = "test-clubos-key"
INTOUCH_ID = "6f1c9a52-0b7e-4c57-9a53-2b1f0c4e8d11"
CLUBOS_ID = "0b9d7a34-6a51-4a0e-8f3c-5d2e9b7c1a40"


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


TENANCY_TOML = f"""
[[provider]]
name = "intouch"
identifier = "{INTOUCH_ID}"
key_sha256 = "{_sha(INTOUCH_KEY)}"

[[provider]]
name = "clubos"
identifier = "{CLUBOS_ID}"
key_env = "TEST_CLUBOS_KEY"

[[client]]
name = "acme"
  [[client.club]]
  name = "downtown"
  ids.intouch = {{ client = "456", club = "123" }}
  ids.clubos = {{ client = "A1", club = "77" }}
  [[client.club]]
  name = "uptown"
  ids.intouch = {{ client = "456", club = "124" }}
  [[client.subscription]]
  provider = "clubos"
  receives = ["PROSPECT", "MEMBER"]
  with = ["owner"]
"""

ENV = {"TEST_CLUBOS_KEY": CLUBOS_KEY}


def user_xml(
    record_id: str = "R-1",
    *,
    identifier: str = INTOUCH_ID,
    client_id: str = "456",
    club_id: str = "123",
    firstname: str = "Ada",
    user_type: str = "PROSPECT",
    extra: str = "",
) -> bytes:
    return f"""<user>
  <providerInfo>
    <identifier>{identifier}</identifier><clientID>{client_id}</clientID>
    <clubID>{club_id}</clubID><recordID>{record_id}</recordID>
  </providerInfo>
  <userInfo>
    <firstname>{firstname}</firstname><lastname>Lovelace</lastname>
    <userStatus>ACTIVE</userStatus><userType>{user_type}</userType>
    <email>ada@example.com</email>{extra}
  </userInfo>
  <leadInfo><leadSource>Walk-in</leadSource><ownerID>S-17</ownerID></leadInfo>
</user>""".encode()


def lead_source_xml(record_id: str = "FACEBOOK", name: str = "Facebook") -> bytes:
    return f"""<leadSource>
  <providerInfo>
    <identifier>{INTOUCH_ID}</identifier><clientID>456</clientID>
    <clubID>123</clubID><recordID>{record_id}</recordID>
  </providerInfo>
  <leadInfo><name>{name}</name><active>true</active></leadInfo>
</leadSource>""".encode()


def inbound(
    record_id: str = "R-1",
    body: Body | None = None,
    received_at: datetime.datetime | None = None,
) -> Inbound:
    """A save of intouch's user `record_id` in acme/downtown, as the ingress makes it."""
    return Inbound(
        message_id=uuid.uuid4(),
        uuid=hub_uuid("intouch", "456", "123", Kind.USER, record_id),
        kind=Kind.USER,
        provider="intouch",
        client="acme",
        club="downtown",
        client_id="456",
        club_id="123",
        record_id=record_id,
        body=body or {"userInfo": {"firstname": "Ada", "lastname": "Lövelace"}},
        received_at=received_at or datetime.datetime.now(datetime.UTC),
    )
