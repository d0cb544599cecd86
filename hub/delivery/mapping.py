"""Owners by email and lead sources by name, at one partner, by the partner contract.

- Staff are never created. The owner's email (trimmed, case-insensitive) is
  matched against the partner's staff list (cached, refreshed after the TTL
  or on a miss), or looked up with find-by-email. No match: no owner, and a
  mapping gap is recorded.
- Lead sources are matched by name, case-insensitive, against the partner's
  list; no match and the partner can create: created once and remembered;
  no match and no create: none, and a gap. A partner with create but no list
  has the hub as the master of its list: each name is created once.

One refresh or create at a time per partner, club and kind. A miss does not
refetch a list fetched less than `refresh_floor` seconds ago, so a record
with an unknown owner cannot hammer the partner.
"""

from __future__ import annotations

import datetime

import structlog

from adapters.base import Adapter, Capability, ClubRef
from hub.store import mappings
from hub.store.pool import Pool

log = structlog.get_logger(__name__)

STAFF = "staff"
LEAD_SOURCE = "leadsource"


def normalise(key: str) -> str:
    return key.strip().lower()


class Mapper:
    """Resolves owners and lead sources for the deliveries of one process."""

    def __init__(self, pool: Pool, ttl: float, refresh_floor: float = 30.0) -> None:
        self._pool = pool
        self._ttl = datetime.timedelta(seconds=ttl)
        self._floor = datetime.timedelta(seconds=min(refresh_floor, ttl))

    async def owner(self, adapter: Adapter, club: ClubRef, email: str) -> str | None:
        key = normalise(email)
        partner = adapter.config.name
        if adapter.has(Capability.STAFF_LIST):
            entries = await self._list(adapter, club, STAFF, key)
            if key in entries:
                return entries[key]
        elif adapter.has(Capability.STAFF_FIND_BY_EMAIL):
            found = await self._found(adapter, club, key)
            if found is not None:
                return found
        else:
            return None  # this partner takes no owners: not a gap
        await mappings.gap(self._pool, partner, club.client_id, club.club_id, STAFF, key)
        log.info("owner not matched", partner=partner, club=club.club_id, email=key)
        return None

    async def lead_source(self, adapter: Adapter, club: ClubRef, name: str) -> str | None:
        key = normalise(name)
        partner = adapter.config.name
        can_list = adapter.has(Capability.LEADSOURCE_LIST)
        can_create = adapter.has(Capability.LEADSOURCE_CREATE)
        if can_list:
            entries = await self._list(adapter, club, LEAD_SOURCE, key)
            if key in entries:
                return entries[key]
        if can_create:
            return await self._create(adapter, club, name.strip(), key)
        if can_list:
            await mappings.gap(self._pool, partner, club.client_id, club.club_id, LEAD_SOURCE, key)
            log.info("lead source not matched", partner=partner, club=club.club_id, name=key)
        return None

    async def _list(self, adapter: Adapter, club: ClubRef, kind: str, key: str) -> dict[str, str]:
        """The partner's list, from the cache if fresh enough for this key, else fetched."""
        partner = adapter.config.name
        cached = await mappings.cached(self._pool, partner, club.client_id, club.club_id, kind)
        if self._good_enough(cached, key):
            assert cached is not None
            return cached.entries
        async with mappings.refreshing(self._pool, partner, club.client_id, club.club_id, kind):
            cached = await mappings.cached(self._pool, partner, club.client_id, club.club_id, kind)
            if self._good_enough(cached, key):  # another worker refreshed it meanwhile
                assert cached is not None
                return cached.entries
            if kind == STAFF:
                entries = {
                    normalise(s.email): s.id for s in await adapter.list_staff(club) if s.email
                }
            else:
                entries = {normalise(s.name): s.id for s in await adapter.list_lead_sources(club)}
            await mappings.store(
                self._pool, partner, club.client_id, club.club_id, kind, entries, merge=False
            )
            log.info(
                "list refreshed", partner=partner, club=club.club_id, kind=kind, size=len(entries)
            )
            return entries

    def _good_enough(self, cached: mappings.Cached | None, key: str) -> bool:
        if cached is None:
            return False
        age = datetime.datetime.now(datetime.UTC) - cached.refreshed_at
        return age < self._ttl and (key in cached.entries or age < self._floor)

    async def _found(self, adapter: Adapter, club: ClubRef, key: str) -> str | None:
        partner = adapter.config.name
        cached = await mappings.cached(self._pool, partner, club.client_id, club.club_id, STAFF)
        if cached is not None and key in cached.entries and self._good_enough(cached, key):
            return cached.entries[key]
        matches = [
            s for s in await adapter.find_staff_by_email(club, key) if normalise(s.email) == key
        ]
        if not matches:
            return None
        await mappings.store(
            self._pool,
            partner,
            club.client_id,
            club.club_id,
            STAFF,
            {key: matches[0].id},
            merge=True,
        )
        return matches[0].id

    async def _create(self, adapter: Adapter, club: ClubRef, name: str, key: str) -> str:
        partner = adapter.config.name
        where = (self._pool, partner, club.client_id, club.club_id, LEAD_SOURCE)
        async with mappings.refreshing(*where):
            cached = await mappings.cached(*where)
            if cached is not None and key in cached.entries:  # created by another worker
                return cached.entries[key]
            created = await adapter.create_lead_source(club, name)
            await mappings.store(*where, {key: created.id}, merge=True)
            log.info("lead source created", partner=partner, club=club.club_id, name=name)
            return created.id
