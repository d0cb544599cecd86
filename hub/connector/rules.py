"""The field rules of the Connector documents, as data.

One table per document section; `schemas/connector/*.xsd` states the same
rules for partners, and a test holds the two to the same verdicts. Each
check returns None for a good value or a sentence saying what is wrong.
This module knows nothing of XML or HTTP.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass

from hub.connector.countries import COUNTRIES

Check = Callable[[str], str | None]

# XML Schema's \s is only these four; Python's would also take Unicode spaces.
_XML_SPACE = " \t\n\r"
_EMAIL = re.compile(r"[^@ \t\n\r]+@[^@ \t\n\r]+\.[^@ \t\n\r]+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def text(max_length: int) -> Check:
    def check(value: str) -> str | None:
        if len(value) > max_length:
            return f"at most {max_length} characters (got {len(value)})"
        return None

    return check


def one_of(*allowed: str) -> Check:
    wanted = " or ".join(", ".join(allowed).rsplit(", ", 1))

    def check(value: str) -> str | None:
        return None if value in allowed else f"must be {wanted} (got {value!r})"

    return check


def date(value: str) -> str | None:
    if _DATE.fullmatch(value):
        try:
            datetime.date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return None
    return f"must be a real date as yyyy-mm-dd (got {value!r})"


def email(value: str) -> str | None:
    if len(value) > 254:
        return f"at most 254 characters (got {len(value)})"
    if not _EMAIL.fullmatch(value):
        return f"must be an email address such as name@example.com (got {value!r})"
    return None


def country(value: str) -> str | None:
    if value in COUNTRIES:
        return None
    return f"must be an ISO 3166-1 alpha-2 code such as US (got {value!r})"


def is_blank(value: str) -> bool:
    return not value.strip(_XML_SPACE)


@dataclass(frozen=True, slots=True)
class Field:
    """One element of a section: its rule and whether it must be given."""

    name: str
    check: Check
    required: bool = False


@dataclass(frozen=True, slots=True)
class Section:
    """The fields of one section, in the order answers show them."""

    fields: dict[str, Field]
    required: tuple[str, ...]


def section(*fields: Field) -> Section:
    return Section({f.name: f for f in fields}, tuple(f.name for f in fields if f.required))


PROVIDER_INFO = section(
    Field("identifier", text(64), required=True),
    Field("clientID", text(64), required=True),
    Field("clubID", text(64), required=True),
    Field("recordID", text(64), required=True),
)


def user_info(*user_types: str) -> Section:
    return section(
        Field("firstname", text(50), required=True),
        Field("lastname", text(50), required=True),
        Field("birthdate", date),
        Field("gender", one_of("M", "F")),
        Field("userStatus", one_of("ACTIVE", "INACTIVE"), required=True),
        Field("userType", one_of(*user_types), required=True),
        Field("address1", text(100)),
        Field("address2", text(100)),
        Field("city", text(50)),
        Field("zipcode", text(20)),
        Field("state", text(50)),
        Field("country", country),
        Field("mobile", text(30)),
        Field("email", email),
        Field("homePhone", text(30)),
        Field("workPhone", text(30)),
        Field("company", text(100)),
    )


USER_LEAD_INFO = section(
    Field("leadSource", text(64)),
    Field("ownerID", text(64)),
    Field("trialStart", date),
    Field("trialEnd", date),
)

LEAD_SOURCE_INFO = section(
    Field("name", text(100), required=True),
    Field("active", one_of("true", "false")),
)

# Set by the hub and shown in GET answers; refused in a save.
READ_ONLY = ("createdBy", "createdDate", "modifiedBy", "modifiedDate")
