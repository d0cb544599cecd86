"""One partner's deliveries: latest version, that partner's IDs, mappings, the adapter.

For each batch of jobs: claim the records at this partner (a short
statement: a claim with a lease, renewed while the partner is called), read
the latest stored versions and where the partner stands; skip what it has
already; resolve the owner and lead source (only what the subscription
includes); save through the adapter, with no transaction or connection held;
then write the attempts, the partner's IDs and versions, and release the
claims (one short transaction). A record claimed by another worker is tried
again here, with backoff, until that claim is released or runs out (up to
`CLAIM_WAIT` seconds), then it is a TransientError (`ClaimedElsewhere`): its
message stays unacked meanwhile, and it is never delivered twice at once.
Every attempt is logged (line and row) with the partner's answer. Partner
errors become TransientError (retry, honouring Retry-After) or
PermanentError (dead letter); the consumer decides what that means for the
message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Collection, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from adapters.base import (
    Adapter,
    ClubRef,
    PartnerError,
    SaveResult,
    TransientPartnerError,
)
from hub.broker.consumer import Incoming, PartsFailed
from hub.delivery import job as job_message
from hub.delivery import outbound
from hub.delivery.breaker import Breaker
from hub.delivery.job import DeliveryJob
from hub.delivery.mapping import Mapper
from hub.errors import HubError, PermanentError, TransientError
from hub.ops import metrics
from hub.pacing import Repeats, backoff
from hub.records import StoredRecord
from hub.store import deliveries, mappings, records
from hub.store.deliveries import Attempt
from hub.store.pool import DatabaseError, Pool
from hub.tenancy import Tenancy

log = structlog.get_logger(__name__)


# A claim lasts this long unless renewed (every quarter of it, while the partner is
# called): a worker that dies holds its records at the partner for at most this long.
LEASE = 20.0
# How long a job waits for a record that another worker has claimed: more than a lease,
# so that the claim of a worker that died runs out while its redelivered job waits.
CLAIM_WAIT = LEASE + 10.0


class ClaimedElsewhere(TransientError):
    """Another worker delivers this record to this partner, and did not finish in time."""


@dataclass(slots=True)
class _Waiting:
    job: DeliveryJob
    attempt: int
    future: asyncio.Future[bool]
    give_up: float  # monotonic: when a record claimed elsewhere is no longer waited for
    tries: int = 0


class _Elsewhere:
    """The outcome of a job whose record another worker has claimed: try again soon."""


ELSEWHERE = _Elsewhere()
Outcome = bool | BaseException | _Elsewhere


def _settle(waiting: asyncio.Future[bool], outcome: bool | BaseException) -> None:
    if waiting.done():  # its handler was cancelled meanwhile
        return
    if isinstance(outcome, BaseException):
        waiting.set_exception(outcome)
    else:
        waiting.set_result(outcome)


class PartnerWorker:
    """Delivers jobs from one partner's queue through that partner's adapter."""

    def __init__(
        self,
        adapter: Adapter,
        tenancy: Tenancy,
        pool: Pool,
        mapper: Mapper,
        breaker: Breaker,
        *,
        concurrency: int = 32,
    ) -> None:
        # Jobs delivered at once (the partner's concurrency): one batch at a time, of at
        # most this many; a message may carry many jobs, so the prefetch does not bound it.
        self.max_batch = concurrency
        self._adapter = adapter
        self._breaker = breaker
        self._partner = adapter.config.name
        self._tenancy = tenancy
        self._pool = pool
        self._mapper = mapper
        self._waiting: list[_Waiting] = []
        self._flushes: set[asyncio.Task[None]] = set()
        self._one_batch_at_a_time = asyncio.Lock()
        # Who claims: unique to this worker, readable by an operator.
        self._token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._repeats = Repeats(30.0)

    async def handle(self, incoming: Incoming) -> None:
        jobs = job_message.decode(incoming.body)
        if jobs[0].partner != self._partner:
            raise PermanentError(f"a job for {jobs[0].partner!r} in {self._partner!r}'s queue")
        # While the partner's circuit is open, wait here: the message stays unacked and
        # no attempt is spent.
        probe = await self._breaker.admit()
        outcomes = await asyncio.gather(
            *(self._handle(job, incoming.attempt) for job in jobs), return_exceptions=True
        )
        await self._account(probe, outcomes)
        for outcome in outcomes:  # cancelled, or worse: not a job's failure
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome
        failed = [
            (job, o) for job, o in zip(jobs, outcomes, strict=True) if isinstance(o, Exception)
        ]
        if len(jobs) == 1 and failed:
            raise failed[0][1]
        if failed:  # each failed job goes on alone: retried, delayed or dead-lettered
            raise PartsFailed(
                [
                    (Incoming(job.encode(), job.message_id, incoming.attempt, incoming.headers), o)
                    for job, o in failed
                ]
            )

    async def _account(self, probe: bool, outcomes: Sequence[bool | BaseException]) -> None:
        """Tell the breaker how the partner did: its failures count, the database's and
        another worker's claims do not."""
        transient = [
            o
            for o in outcomes
            if isinstance(o, TransientError)
            and not isinstance(o, DatabaseError | ClaimedElsewhere | mappings.ListBusy)
        ]
        try:
            if transient:
                await self._breaker.failed(probe, str(transient[0]))
            elif any(o is True for o in outcomes):
                await self._breaker.succeeded(probe)
            else:
                await self._breaker.done(probe)
        except DatabaseError as exc:
            # The jobs are done and written (or failed): not worth doing again for this.
            # A probe's claim on the circuit runs out by itself.
            log.warning("circuit not updated", partner=self._partner, error=str(exc))

    async def _handle(self, job: DeliveryJob, attempt: int) -> bool:
        """Deliver the record's latest version; False if the partner had it already.

        Jobs that arrive while a batch is being delivered are delivered together:
        one claim, one read and one write for all.
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._enqueue(_Waiting(job, attempt, future, time.monotonic() + CLAIM_WAIT))
        return await future

    def _enqueue(self, waiting: _Waiting) -> None:
        self._waiting.append(waiting)
        if len(self._waiting) == 1:
            self._start(self._flush())

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        self._flushes.add(task := asyncio.create_task(work))
        task.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        async with self._one_batch_at_a_time:
            batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
            if self._waiting:  # more than a batch: the next flush takes the rest
                self._start(self._flush())
            batch = [w for w in batch if not w.future.done()]  # not cancelled meanwhile
            if not batch:
                return
            try:
                outcomes: list[Outcome] = await self._deliver_batch(batch)
            except Exception as exc:
                outcomes = [exc] * len(batch)
            except BaseException:  # cancelled: the jobs stay unacked and come back
                for waiting in batch:
                    waiting.future.cancel()
                raise
            for waiting, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, _Elsewhere):
                    self._again_later(waiting)
                else:
                    _settle(waiting.future, outcome)

    def _again_later(self, waiting: _Waiting) -> None:
        """A record claimed by another worker: try again after a backoff, up to give_up."""
        now = time.monotonic()
        if now >= waiting.give_up:
            _settle(
                waiting.future,
                ClaimedElsewhere(
                    f"record {waiting.job.uuid} is being delivered to {self._partner}"
                    f" by another worker for over {CLAIM_WAIT:g} s"
                ),
            )
            return
        waiting.tries += 1
        delay = min(backoff(waiting.tries, 0.05, 2.0), waiting.give_up - now)
        self._start(self._requeue(waiting, delay))

    async def _requeue(self, waiting: _Waiting, delay: float) -> None:
        await asyncio.sleep(delay)
        if not waiting.future.done():  # its handler was not cancelled meanwhile
            self._enqueue(waiting)

    async def _deliver_batch(self, batch: list[_Waiting]) -> list[Outcome]:
        """Claim, read, call the partner with nothing held, write and release."""
        uuids = {w.job.uuid for w in batch}
        claimed = await deliveries.claim(self._pool, self._partner, uuids, self._token, LEASE)
        try:
            loaded = await deliveries.load(self._pool, self._partner, uuids)
            async with self._renewing(claimed):
                results = await self._call_partner(batch, claimed, loaded)
            done = [r[1] for r in results if isinstance(r, tuple) and r[1] is not None]
            await self._write(done, claimed)
        except BaseException:
            await self._release(claimed)
            raise
        # Raised after the write, so that failed attempts are kept.
        return [r[0] if isinstance(r, tuple) else r for r in results]

    async def _call_partner(
        self,
        batch: list[_Waiting],
        claimed: Collection[uuid.UUID],
        loaded: dict[uuid.UUID, tuple[StoredRecord, deliveries.Standing]],
    ) -> list[tuple[Outcome, tuple[Attempt, str | None] | None] | BaseException]:
        seen: set[uuid.UUID] = set()
        calls = []
        for waiting in batch:
            job = waiting.job
            if job.uuid in loaded and job.uuid not in claimed:
                calls.append(self._elsewhere())
            else:
                calls.append(
                    self._one(job, waiting.attempt, loaded.get(job.uuid), job.uuid not in seen)
                )
            seen.add(job.uuid)
        return await asyncio.gather(*calls, return_exceptions=True)

    async def _write(
        self, done: Sequence[tuple[Attempt, str | None]], claimed: Collection[uuid.UUID]
    ) -> None:
        """Write the outcomes and release the claims, waiting out a database away.

        What the partner accepted must not be sent again because the database was away
        when the hub came to write it down (at a partner without an idempotency key that
        is a second person): the write is tried again, with backoff and jitter, until the
        database takes it. The job's message stays unacked meanwhile; nobody else can
        claim the records while the database is away, and the first write after it is
        back is this one. A stop cancels the wait (the job is then sent again).
        """
        tries = 0
        while True:
            try:
                await deliveries.finish(self._pool, self._partner, self._token, done, claimed)
                return
            except DatabaseError as exc:
                if not done:
                    raise  # nothing was sent: the job waits at the gate and runs again
                tries += 1
                pause = backoff(tries, 0.5, 5.0)
                self._repeats.log(
                    log.warning,
                    "write",
                    "outcomes not written: trying again",
                    partner=self._partner,
                    tries=tries,
                    pause_s=round(pause, 2),
                    error=str(exc),
                )
                await asyncio.sleep(pause)

    @staticmethod
    async def _elsewhere() -> tuple[Outcome, tuple[Attempt, str | None] | None]:
        return ELSEWHERE, None

    @contextlib.asynccontextmanager
    async def _renewing(self, claimed: Collection[uuid.UUID]) -> AsyncIterator[None]:
        """Renew the claims every quarter lease while the partner is called."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(LEASE / 4)
                try:
                    kept = await deliveries.renew(
                        self._pool, self._partner, claimed, self._token, LEASE
                    )
                except DatabaseError as exc:
                    log.warning("claims not renewed", partner=self._partner, error=str(exc))
                    continue
                if kept < len(claimed):
                    log.warning("claims lost", partner=self._partner, lost=len(claimed) - kept)

        if not claimed:
            yield
            return
        renewing = asyncio.create_task(renew())
        try:
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing

    async def _release(self, claimed: Collection[uuid.UUID]) -> None:
        """Give the claims back (best effort: otherwise their lease runs out)."""
        if not claimed:
            return
        try:
            await deliveries.release(self._pool, self._partner, self._token, claimed)
        except DatabaseError as exc:
            log.warning("claims not released", partner=self._partner, error=str(exc))

    async def _one(
        self,
        job: DeliveryJob,
        attempt: int,
        loaded: tuple[StoredRecord, deliveries.Standing] | None,
        first: bool,
    ) -> tuple[Outcome, tuple[Attempt, str | None] | None]:
        """One claimed job of a batch: its outcome, and its attempt to write (if one was made)."""
        if loaded is None:
            raise PermanentError(f"record {job.uuid} is not in the store")
        record, standing = loaded
        if not first or (standing.delivered_version >= record.version and not job.again):
            log.info(
                "already delivered",
                partner=self._partner,
                uuid=str(job.uuid),
                version=record.version,
                delivered=standing.delivered_version,
            )
            metrics.delivery(self._partner, "skipped")
            return False, None
        started = time.perf_counter()
        try:
            result = await self._save(record, standing.partner_id)
        except PartnerError as failure:
            tried = self._attempt(record, attempt, started, failure)
            if isinstance(failure, TransientPartnerError):
                error: HubError = TransientError(failure.message, retry_after=failure.retry_after)
            else:
                error = PermanentError(
                    f"{self._partner} answered {failure.status}: {failure.message}"
                )
            error.__cause__ = failure
            return error, (tried, None)
        done = self._attempt(record, attempt, started, None, result.notes)
        return True, (done, result.partner_id)

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
        club = self._tenancy.named_club(record.client, record.club)
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
        email = await records.owner_email(self._pool, record)
        if email is None:
            if record.body.get("leadInfo", {}).get("ownerID"):
                log.info("owner has no staff email", partner=self._partner, uuid=str(record.uuid))
            return None
        return await self._mapper.owner(self._adapter, club, email)

    async def _lead_source(self, record: StoredRecord, club: ClubRef) -> dict[str, str | None]:
        name = await records.lead_source_name(self._pool, record)
        if name is None:
            return {}
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
        """The attempt's row, logged as one line and counted."""
        elapsed = time.perf_counter() - started
        latency = round(elapsed * 1000, 2)
        outcome = (
            "delivered"
            if error is None
            else "transient"
            if isinstance(error, TransientPartnerError)
            else "permanent"
        )
        metrics.delivery(self._partner, outcome, elapsed)
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
