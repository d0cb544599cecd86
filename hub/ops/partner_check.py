"""`hub partner check NAME`: what a partner's API does, against what the tenancy declares.

The tool that onboarding a partner starts with. It builds the partner's
adapter from the tenancy file (refusing settings it cannot use, and a
subscription it cannot take, as the hub would at start), then, for one club
of each client connected to the partner, calls every read-only capability
the adapter has: the staff list, a find-by-email (with an email from that
list, else a made-up one), the lead-source list. A declared capability that
fails, or an undeclared one that works, is reported; only the first is a
mismatch. Writes (user.save, leadsource.create) are never called: their
declaration is taken on trust, and said so.

A client's subscription that asks for `owner` while the partner declares no
staff capability, or for `lead_source` while it declares no lead-source
capability, is a mismatch too (capability `with owner` / `with lead_source`):
the hub would deliver without them and say nothing.

It never writes at the partner and never touches the database or the broker.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from adapters.base import Adapter, Capability, ClubRef, PartnerError
from hub.delivery.service import build_adapter
from hub.errors import ConfigError, NotFound
from hub.tenancy import Provider, Tenancy

PROBE_EMAIL = "hub-partner-check@example.invalid"
_WRITES = (Capability.USER_SAVE, Capability.LEADSOURCE_CREATE)
# A subscription's `with` extra -> the capabilities of which the hub needs one to send it.
_EXTRA_NEEDS: dict[str, tuple[Capability, ...]] = {
    "owner": (Capability.STAFF_LIST, Capability.STAFF_FIND_BY_EMAIL),
    "lead_source": (Capability.LEADSOURCE_LIST, Capability.LEADSOURCE_CREATE),
}
_EXTRA_WHAT = {"owner": "staff", "lead_source": "lead-source"}


@dataclass(frozen=True, slots=True)
class Finding:
    capability: str
    club: str  # client/club in the partner's IDs, or "-"
    declared: bool
    verdict: str  # works, fails, not called
    detail: str

    @property
    def mismatch(self) -> bool:
        return self.declared and self.verdict == "fails"

    def to_json(self) -> dict[str, Any]:
        return {
            "capability": self.capability,
            "club": self.club,
            "declared": self.declared,
            "verdict": self.verdict,
            "detail": self.detail,
            "mismatch": self.mismatch,
        }


async def check(tenancy: Tenancy, name: str) -> list[Finding]:
    """Every finding for partner `name`; ConfigError if the hub could not use it at all."""
    provider = tenancy.providers.get(name)
    if provider is None:
        raise NotFound(f"no provider {name!r} in the tenancy file")
    if provider.adapter is None:
        raise ConfigError(f"provider {name!r} has no adapter: the hub only receives from it")
    clubs = _clubs(tenancy, provider)
    declared = frozenset(Capability(c) for c in provider.capabilities)
    async with aiohttp.ClientSession() as session:
        adapter = build_adapter(provider, tenancy, session)
        findings = [
            Finding(
                capability.value,
                "-",
                capability in declared,
                "not called",
                "it writes: the declaration is taken on trust",
            )
            for capability in _WRITES
            if capability in declared
        ]
        findings += _extras_without_capability(tenancy, provider, declared)
        if not clubs:
            findings.append(Finding("-", "-", False, "not called", "no club has ids for it"))
        for club in clubs:
            findings += await _probe(adapter, club, declared)
    return findings


def in_full(finding: Finding) -> str:
    """`finding` on lines of its own, its detail whole (the table cuts each cell)."""
    where = "" if finding.club == "-" else f" ({finding.club})"
    lines = finding.detail.splitlines() or ["-"]
    return f"  {finding.capability}{where}\n" + "".join(f"    {line}\n" for line in lines)


def _extras_without_capability(
    tenancy: Tenancy, provider: Provider, declared: frozenset[Capability]
) -> list[Finding]:
    """A finding for each client whose subscription asks for an extra that the partner
    declares no capability to send."""
    findings = []
    for client in tenancy.clients.values():
        for subscription in client.subscriptions:
            if subscription.provider != provider.name:
                continue
            for extra, needs in _EXTRA_NEEDS.items():
                if extra not in subscription.extras or declared & set(needs):
                    continue
                findings.append(
                    Finding(
                        f"with {extra}",
                        "-",
                        True,
                        "fails",
                        f"client {client.name!r} subscribes with {extra}, but provider "
                        f"{provider.name!r} declares no {_EXTRA_WHAT[extra]} capability "
                        f"({' or '.join(needs)}): the hub sends it no {extra.replace('_', ' ')}",
                    )
                )
    return findings


def _clubs(tenancy: Tenancy, provider: Provider) -> list[ClubRef]:
    """One club of each client with ids at the partner (a client's clubs share its API)."""
    found: list[ClubRef] = []
    for client in tenancy.clients.values():
        for club in client.clubs:
            ids = club.ids.get(provider.name)
            if ids is not None:
                found.append(ClubRef(ids.client, ids.club))
                break
    return found


async def _probe(adapter: Adapter, club: ClubRef, declared: frozenset[Capability]) -> list[Finding]:
    where = f"{club.client_id}/{club.club_id}"
    findings: list[Finding] = []
    staff_email = PROBE_EMAIL

    async def staff() -> str:
        nonlocal staff_email
        members = await adapter.list_staff(club)
        if members:
            staff_email = members[0].email
        return f"{len(members)} staff" + (f", e.g. {members[0].email}" if members else "")

    async def find() -> str:
        found = await adapter.find_staff_by_email(club, staff_email)
        return f"{staff_email}: {len(found)} found"

    async def sources() -> str:
        found = await adapter.list_lead_sources(club)
        names = ", ".join(s.name for s in found[:3])
        return f"{len(found)} lead sources" + (f": {names}" if found else "")

    probes: list[tuple[Capability, Callable[[], Awaitable[str]]]] = [
        (Capability.STAFF_LIST, staff),
        (Capability.STAFF_FIND_BY_EMAIL, find),
        (Capability.LEADSOURCE_LIST, sources),
    ]
    for capability, probe in probes:
        if capability not in adapter.supported:
            if capability in declared:  # the adapter refused this at build: not reached
                findings.append(Finding(capability.value, where, True, "fails", "not supported"))
            continue
        started = time.perf_counter()
        try:
            said = await probe()
        except PartnerError as exc:
            verdict, detail = "fails", _failure(exc, adapter.config.name)
        else:
            verdict, detail = "works", said
        ms = (time.perf_counter() - started) * 1000
        findings.append(
            Finding(
                capability.value, where, capability in declared, verdict, f"{detail} ({ms:.0f} ms)"
            )
        )
    return findings


def _failure(exc: PartnerError, partner: str) -> str:
    """What the partner answered, without the partner's name and the status twice over
    (the table is narrow, and the partner's own words come last)."""
    message = exc.message.removeprefix(f"{partner}: ")
    if exc.status and f"answered {exc.status}" not in message:
        return f"{exc.status} {message}"
    return message
