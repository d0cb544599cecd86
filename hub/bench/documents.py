"""The <user> documents a benchmark run posts: distinct, valid, built up front.

Each run has its own id, and record i of it is `bench-<runid>-<i>`, so no two
records of any run share a recordID and every post is a new record, never an
update. The bodies are encoded before the clock starts; building them must
not be what is measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

_TEMPLATE = """<user>
  <providerInfo>
    <identifier>{identifier}</identifier>
    <clientID>{client_id}</clientID>
    <clubID>{club_id}</clubID>
    <recordID>{record_id}</recordID>
  </providerInfo>
  <userInfo>
    <firstname>Ada</firstname>
    <lastname>Bench{index}</lastname>
    <birthdate>1990-12-10</birthdate>
    <gender>F</gender>
    <userStatus>ACTIVE</userStatus>
    <userType>PROSPECT</userType>
    <address1>1234 Fake St</address1>
    <city>Springfield</city>
    <zipcode>12345</zipcode>
    <state>IL</state>
    <country>US</country>
    <email>{record_id}@example.com</email>
  </userInfo>
  <leadInfo>
    <leadSource>Walk-in</leadSource>
    <trialStart>2026-11-01</trialStart>
    <trialEnd>2026-11-14</trialEnd>
  </leadInfo>
</user>
"""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who posts: the provider's key and the IDs that go in every record."""

    key: str
    identifier: str
    client_id: str
    club_id: str


def record_id(run_id: str, index: int) -> str:
    return f"bench-{run_id}-{index}"


def user(caller: Caller, run_id: str, index: int) -> bytes:
    """Record `index` of run `run_id`: a PROSPECT, ACTIVE, about 750 bytes."""
    return _TEMPLATE.format(
        identifier=escape(caller.identifier),
        client_id=escape(caller.client_id),
        club_id=escape(caller.club_id),
        record_id=escape(record_id(run_id, index)),
        index=index,
    ).encode()


def users(caller: Caller, run_id: str, indices: range) -> list[bytes]:
    return [user(caller, run_id, i) for i in indices]
