"""The adapter interface: what the hub asks of every partner API.

An adapter turns the hub's calls (save a user, list or find staff, list or
create lead sources) into one partner's wire format, and the partner's
answers into data or into one of two errors: `TransientPartnerError` (try
again later, maybe after `retry_after` seconds) or `PermanentPartnerError`
(trying again cannot help). It must never touch RabbitMQ or PostgreSQL, and
never retry on its own: retries are the delivery worker's.

What an adapter may spend at its partner (calls per second, a daily call
quota) is its `Budget`, given by the hub in `PartnerConfig.budget` and
shared by every hub process (the hub keeps it in PostgreSQL); every call
waits its turn *before* its own timeout starts (`adapters.http.request`).
`LocalBudget` keeps one in memory: for an adapter used without the hub
(its tests), never by the hub's delivery processes.
"""

from __future__ import annotations

import abc
import asyncio
import datetime
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol

import aiohttp


class Capability(StrEnum):
    USER_SAVE = "user.save"
    STAFF_LIST = "staff.list"
    STAFF_FIND_BY_EMAIL = "staff.find_by_email"
    LEADSOURCE_LIST = "leadsource.list"
    LEADSOURCE_CREATE = "leadsource.create"


class AdapterError(Exception):
    """Base of what adapters raise."""


class AdapterConfigError(AdapterError):
    """The provider's settings cannot be used by this adapter: refuse to start."""


class PartnerError(AdapterError):
    """The partner did not do what was asked; carries its answer for the attempt log."""

    def __init__(self, message: str, *, status: int | None = None, answer: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.answer = answer[:2000]


class TransientPartnerError(PartnerError):
    """May work later: 408, 425, 429, 5xx, refused, reset, timeout."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        answer: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, answer=answer)
        self.retry_after = retry_after


class PermanentPartnerError(PartnerError):
    """Will not work by trying again: any other 4xx, or an answer that makes no sense."""


class Budget(Protocol):
    """What calls the hub allows an adapter to make at its partner, all processes counted."""

    async def wait_turn(self) -> None:
        """Wait until the partner's rate lets one more call start."""
        ...

    async def take_call(self, site: str, day: datetime.date, allowed: int) -> bool:
        """Count one call to `site` on `day` if fewer than `allowed` were made; False if not."""
        ...

    async def use_up(self, site: str, day: datetime.date, calls: int) -> None:
        """The partner says `site` has no calls left on `day`: count it as `calls` made."""
        ...

    async def calls(self, site: str, day: datetime.date) -> int:
        """The calls counted for `site` on `day`."""
        ...


class LocalBudget:
    """A budget in this process's memory: `rate` calls per second at most, spaced evenly,
    and per-site day counts. For adapters used without the hub (tests) only."""

    def __init__(self, rate: float | None = None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._calls: dict[tuple[str, datetime.date], int] = {}

    async def wait_turn(self) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        turn = max(now, self._next)
        self._next = turn + self._interval
        if turn > now:
            await asyncio.sleep(turn - now)

    async def take_call(self, site: str, day: datetime.date, allowed: int) -> bool:
        used = self._calls.get((site, day), 0)
        if used >= allowed:
            return False
        self._calls[(site, day)] = used + 1
        return True

    async def use_up(self, site: str, day: datetime.date, calls: int) -> None:
        self._calls[(site, day)] = max(calls, self._calls.get((site, day), 0))

    async def calls(self, site: str, day: datetime.date) -> int:
        return self._calls.get((site, day), 0)


@dataclass(frozen=True, slots=True)
class PartnerConfig:
    """One provider of the tenancy file, as its adapter sees it."""

    name: str
    url: str
    capabilities: frozenset[Capability]
    settings: Mapping[str, Any] = field(default_factory=dict)
    # Where `settings.key_env` and the like are looked up (the process environment).
    env: Mapping[str, str] = field(default_factory=dict)
    # What the adapter may spend there, shared with every hub process; None: a LocalBudget.
    budget: Budget | None = None

    def secret(self, key: str = "key_env") -> str:
        """The secret named by `settings[key]` (a variable, or VAR_FILE), or AdapterConfigError."""
        var = self.settings.get(key)
        if not isinstance(var, str) or not var:
            raise AdapterConfigError(f"provider {self.name!r}: settings.{key} is not given")
        value = self.env.get(var)
        if value is None and f"{var}_FILE" in self.env:
            try:
                with open(self.env[f"{var}_FILE"], encoding="utf-8") as file:
                    value = file.read().strip()
            except OSError as exc:
                raise AdapterConfigError(
                    f"provider {self.name!r}: cannot read {var}_FILE: {exc.strerror}"
                ) from exc
        if not value:
            raise AdapterConfigError(f"provider {self.name!r}: {var} (settings.{key}) is not set")
        return value


@dataclass(frozen=True, slots=True)
class ClubRef:
    """A club in the partner's own IDs."""

    client_id: str
    club_id: str


@dataclass(frozen=True, slots=True)
class OutboundUser:
    """A prospect or member to save at the partner, in the hub's vocabulary.

    `partner_id` is the partner's ID from an earlier save (then this save is
    an update), or None (a create). `owner_id` and `lead_source_id` are the
    partner's own IDs, already resolved; `lead_source_name` is given with
    them for partners that take names. Fields the subscription does not
    include are None.
    """

    hub_uuid: uuid.UUID
    partner_id: str | None
    user_type: str  # PROSPECT or MEMBER
    status: str  # ACTIVE or INACTIVE
    firstname: str
    lastname: str
    birthdate: str | None = None
    gender: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    zipcode: str | None = None
    state: str | None = None
    country: str | None = None
    mobile: str | None = None
    email: str | None = None
    home_phone: str | None = None
    work_phone: str | None = None
    company: str | None = None
    owner_id: str | None = None
    lead_source_id: str | None = None
    lead_source_name: str | None = None
    trial_start: str | None = None
    trial_end: str | None = None
    # Same for every attempt of one delivery: partners may deduplicate on it.
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class StaffMember:
    id: str
    email: str
    first_name: str = ""
    last_name: str = ""


@dataclass(frozen=True, slots=True)
class LeadSource:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class SaveResult:
    """The partner's ID for the user, and anything the adapter changed on the way."""

    partner_id: str
    notes: tuple[str, ...] = ()


MEMBER_KINDS = frozenset({"MEMBER", "FORMER_MEMBER"})


class Adapter(abc.ABC):
    """One partner API shape. Construct with the partner's config and an HTTP session."""

    name: ClassVar[str]
    # What this API shape can do at all; a provider declares a subset of it.
    supported: ClassVar[frozenset[Capability]]
    # An API that takes prospects only: a subscription to members is refused at start
    # (`check_subscription`), a member at delivery (`require_prospect`). `title` names
    # the API in those messages.
    prospects_only: ClassVar[bool] = False
    title: ClassVar[str] = ""

    def __init__(self, config: PartnerConfig, session: aiohttp.ClientSession) -> None:
        undeclarable = config.capabilities - self.supported
        if undeclarable:
            raise AdapterConfigError(
                f"provider {config.name!r}: adapter {self.name!r} cannot "
                + ", ".join(sorted(undeclarable))
            )
        self.config = config
        self.session = session
        self.budget: Budget = config.budget if config.budget is not None else LocalBudget()

    def has(self, capability: Capability) -> bool:
        return capability in self.config.capabilities

    def check_subscription(self, receives: frozenset[str]) -> None:
        """Refuse (AdapterConfigError) a subscription this partner cannot take."""
        members = receives & MEMBER_KINDS if self.prospects_only else frozenset()
        if members:
            raise AdapterConfigError(
                f"provider {self.config.name!r}: {self.title or self.name} (adapter "
                f"{self.name!r}) takes prospects only and cannot receive "
                + ", ".join(sorted(members))
            )

    def require_prospect(self, user: OutboundUser) -> None:
        """A PermanentPartnerError for anything but a prospect, where the API takes no other."""
        if self.prospects_only and user.user_type != "PROSPECT":
            raise PermanentPartnerError(
                f"{self.config.name}: {self.title or self.name} takes prospects only, "
                f"not a {user.user_type}"
            )

    @abc.abstractmethod
    async def save_user(self, club: ClubRef, user: OutboundUser) -> SaveResult: ...

    async def list_staff(self, club: ClubRef) -> list[StaffMember]:
        raise PermanentPartnerError(f"{self.name}: staff.list is not supported")

    async def find_staff_by_email(self, club: ClubRef, email: str) -> list[StaffMember]:
        raise PermanentPartnerError(f"{self.name}: staff.find_by_email is not supported")

    async def list_lead_sources(self, club: ClubRef) -> list[LeadSource]:
        raise PermanentPartnerError(f"{self.name}: leadsource.list is not supported")

    async def create_lead_source(self, club: ClubRef, name: str) -> LeadSource:
        raise PermanentPartnerError(f"{self.name}: leadsource.create is not supported")
