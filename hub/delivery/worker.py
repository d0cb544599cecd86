"""One partner's deliveries: latest version, that partner's IDs, mappings, the adapter.

For each job: under the record's lock for this partner, read the latest
stored version and where the partner stands; skip what it has already;
resolve the owner and lead source (only what the subscription includes);
save through the adapter; remember the partner's ID and version. Every
attempt is logged (line and row) with the partner's answer. Partner errors
become TransientError (retry, honouring Retry-After) or PermanentError
(dead letter); the consumer decides what that means for the message.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import structlog

from adapters.base import (
    Adapter,
    ClubRef,
    PartnerError,
    SaveResult,
    TransientPartnerError,
)
from hub.broker.consumer import Incoming
from hub.connector.documents import Kind
from hub.delivery import outbound
from hub.delivery.breaker import Breaker
from hub.delivery.job import DeliveryJob
from hub.delivery.mapping import Mapper
from hub.errors import PermanentError, TransientError
from hub.records import StoredRecord
from hub.store import deliveries, records
from hub.store.deliveries import Attempt
from hub.store.pool import DatabaseError, Pool
from hub.tenancy import Tenancy

log = structlog.get_logger(__name__)


class PartnerWorker:
    """Delivers jobs from one partner's queue through that partner's adapter."""

    def __init__(
        self, adapter: Adapter, tenancy: Tenancy, pool: Pool, mapper: Mapper, breaker: Breaker
    ) -> None:
        self._adapter = adapter
        self._breaker = breaker
        self._partner = adapter.config.name
        self._tenancy = tenancy
        self._pool = pool
        self._mapper = mapper

    async def handle(self, incoming: Incoming) -> None:
        job = DeliveryJob.decode(incoming.body)
        if job.partner != self._partner:
            raise PermanentError(f"a job for {job.partner!r} in {self._partner!r}'s queue")
        # While the partner's circuit is open, wait here: the message stays unacked and
        # no attempt is spent.
        probe = await self._breaker.admit()
        try:
            delivered = await self._handle(job, incoming.attempt)
        except DatabaseError:
            self._breaker.done(probe)  # says nothing of the partner's health
            raise
        except TransientError as exc:
            self._breaker.failed(probe, str(exc))
            raise
        except BaseException:
            self._breaker.done(probe)
            raise
        if delivered:
            self._breaker.succeeded(probe)
        else:
            self._breaker.done(probe)

    async def _handle(self, job: DeliveryJob, attempt: int) -> bool:
        """Deliver the record's latest version; False if the partner had it already."""
        async with deliveries.delivering(self._pool, self._partner, job.uuid) as delivery:
            record, standing = await delivery.load()
            if record is None:
                raise PermanentError(f"record {job.uuid} is not in the store")
            if standing.delivered_version >= record.version:
                log.info(
                    "already delivered",
                    partner=self._partner,
                    uuid=str(job.uuid),
                    version=record.version,
                    delivered=standing.delivered_version,
                )
                return False
            started = time.perf_counter()
            try:
                result = await self._save(record, standing.partner_id)
            except PartnerError as exc:
                failure = exc
                await delivery.finish(self._attempt(record, attempt, started, exc), None)
            else:
                done = self._attempt(record, attempt, started, None, result.notes)
                await delivery.finish(done, result.partner_id)
                return True
        # Raised after the commit, so that the failed attempt is kept.
        if isinstance(failure, TransientPartnerError):
            raise TransientError(failure.message, retry_after=failure.retry_after) from failure
        raise PermanentError(
            f"{self._partner} answered {failure.status}: {failure.message}"
        ) from failure

    async def _save(self, record: StoredRecord, partner_id: str | None) -> SaveResult:
        """Map the owner and lead source (lists and creates count as the attempt), then save."""
        club = self._club(record)
        extras = self._extras(record)
        user = outbound.build(
            record,
            partner_id=partner_id,
            extras=extras,
            owner_id=await self._owner(record, club) if "owner" in extras else None,
            **(await self._lead_source(record, club) if "lead_source" in extras else {}),
            idempotency_key=f"{record.uuid}:{self._partner}:{record.version}",
        )
        return await self._adapter.save_user(club, user)

    def _club(self, record: StoredRecord) -> ClubRef:
        client = self._tenancy.clients.get(record.client)
        club = next((c for c in client.clubs if c.name == record.club), None) if client else None
        ids = club.ids.get(self._partner) if club else None
        if ids is None:
            raise PermanentError(
                f"club {record.client}/{record.club} has no ids at {self._partner} in the tenancy"
            )
        return ClubRef(ids.client, ids.club)

    def _extras(self, record: StoredRecord) -> frozenset[str]:
        client = self._tenancy.clients.get(record.client)
        for subscription in client.subscriptions if client else ():
            if subscription.provider == self._partner:
                return subscription.extras
        raise PermanentError(f"{self._partner} no longer subscribes to {record.client}")

    async def _owner(self, record: StoredRecord, club: ClubRef) -> str | None:
        owner = record.body.get("leadInfo", {}).get("ownerID")
        if not owner:
            return None
        # The owner is the sender's own staff record: its email is what partners match.
        staff = await records.find(
            self._pool, record.provider, Kind.STAFF, owner, record.client_id, record.club_id
        )
        email = staff[0].body.get("userInfo", {}).get("email") if staff else None
        if not email:
            log.info("owner has no staff email", partner=self._partner, owner=owner)
            return None
        return await self._mapper.owner(self._adapter, club, email)

    async def _lead_source(self, record: StoredRecord, club: ClubRef) -> dict[str, str | None]:
        given = record.body.get("leadInfo", {}).get("leadSource")
        if not given:
            return {}
        saved = await records.find(
            self._pool, record.provider, Kind.LEADSOURCE, given, record.client_id, record.club_id
        )
        # A leadSource that names no saved lead source is the lead source's name.
        name = saved[0].body.get("leadInfo", {}).get("name", given) if saved else given
        return {
            "lead_source_id": await self._mapper.lead_source(self._adapter, club, name),
            "lead_source_name": name,
        }

    def _attempt(
        self,
        record: StoredRecord,
        attempt: int,
        started: float,
        error: PartnerError | None,
        notes: Sequence[str] = (),
    ) -> Attempt:
        """The attempt's row, logged as one line."""
        latency = round((time.perf_counter() - started) * 1000, 2)
        outcome = (
            "delivered"
            if error is None
            else "transient"
            if isinstance(error, TransientPartnerError)
            else "permanent"
        )
        row = Attempt(
            partner=self._partner,
            uuid=record.uuid,
            version=record.version,
            attempt=attempt,
            outcome=outcome,
            status=error.status if error else None,
            latency_ms=latency,
            error=error.message if error else None,
            answer=error.answer if error else None,
            notes=notes,
        )
        logger = log.info if error is None else log.warning
        logger(
            "attempt",
            partner=self._partner,
            uuid=str(record.uuid),
            version=record.version,
            attempt=attempt,
            outcome=outcome,
            status=row.status,
            latency_ms=latency,
            error=row.error,
        )
        return row
