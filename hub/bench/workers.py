"""The load generator split over processes, so that the client is not the bottleneck.

Each process gets a contiguous slice of the records, its share of the
connections and of the offered rate, builds its bodies, then waits at a
barrier; all start their clocks together when the last one is ready, so the
time of a run is neither process start-up nor body building. Processes are
spawned (not forked), so none inherits the parent's event loop or threads.
"""

from __future__ import annotations

import gc
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from hub.bench import documents, eventloop
from hub.bench.load import Load, drive
from hub.bench.results import PathResult, Sample, combine
from hub.errors import HubError

_READY_WITHIN = 60.0  # seconds for every process to start and build its bodies
_POLL = 1.0


@dataclass(frozen=True, slots=True)
class Plan:
    """A whole run on one path, before it is split over processes."""

    url: str
    caller: documents.Caller
    run_id: str
    records: int
    connections: int
    processes: int
    rate: float | None
    timeout: float


@dataclass(frozen=True, slots=True)
class _Share:
    load: Load
    caller: documents.Caller
    run_id: str
    indices: range


def measure(path: str, plan: Plan) -> PathResult:
    """Run `plan` against its URL and merge what every process measured."""
    return combine(path, samples(path, plan), plan.rate)


def samples(path: str, plan: Plan, on_start: Callable[[], object] | None = None) -> list[Sample]:
    """Run `plan` against its URL: what each process measured, unmerged.

    `on_start` is called as the processes start their clocks (after start-up
    and body building), for a caller that measures something alongside.
    """
    shares = split(plan)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(shares) + 1)
    results: Queue[Sample | str] = context.Queue()
    workers = [
        context.Process(
            target=_work, args=(share, barrier, results), name=f"hub-bench-load-{i}", daemon=True
        )
        for i, share in enumerate(shares)
    ]
    for worker in workers:
        worker.start()
    try:
        try:
            barrier.wait(_READY_WITHIN)
        except threading.BrokenBarrierError as exc:
            raise HubError(f"{path}: load generators did not start: {_drain(results)}") from exc
        if on_start is not None:
            on_start()
        return _collect(path, results, workers)
    finally:
        for worker in workers:
            worker.join(5)
            if worker.is_alive():
                worker.terminate()
                worker.join()


def split(plan: Plan) -> list[_Share]:
    """One share per process: contiguous records, connections and rate in proportion."""
    if not 1 <= plan.processes <= min(plan.connections, plan.records):
        raise HubError(
            f"--processes {plan.processes} must be between 1 and both --connections "
            f"({plan.connections}) and --records ({plan.records})"
        )
    n, p = plan.records, plan.processes
    shares = []
    for k in range(p):
        indices = range(k * n // p, (k + 1) * n // p)
        connections = plan.connections // p + (1 if k < plan.connections % p else 0)
        rate = None if plan.rate is None else plan.rate * len(indices) / n
        # Stagger the open-loop schedules so that the processes' sends interleave.
        offset = 0.0 if plan.rate is None else k / plan.rate
        load = Load(plan.url, plan.caller.key, connections, rate, offset, plan.timeout)
        shares.append(_Share(load, plan.caller, plan.run_id, indices))
    return shares


def _work(share: _Share, barrier: Barrier, results: Queue[Sample | str]) -> None:
    """A load-generator process: build the bodies, wait for the others, drive."""
    try:
        bodies = documents.users(share.caller, share.run_id, share.indices)
        # The bodies live all run long: keep the collector from scanning them again and again.
        gc.collect()
        gc.freeze()
    except Exception as exc:  # reported to the parent, which raises it
        barrier.abort()
        results.put(f"{type(exc).__name__}: {exc}")
        return
    try:
        barrier.wait(_READY_WITHIN)
    except threading.BrokenBarrierError:
        return  # another process failed and said why
    try:
        cpu = time.process_time()
        sample = eventloop.run(drive(share.load, bodies, share.indices.start))
        sample.cpu = time.process_time() - cpu
        results.put(sample)
    except Exception as exc:  # reported to the parent, which raises it
        results.put(f"{type(exc).__name__}: {exc}")


def _collect(
    path: str, results: Queue[Sample | str], workers: Sequence[BaseProcess]
) -> list[Sample]:
    samples: list[Sample] = []
    idle_after_exit = 0
    while len(samples) < len(workers):
        try:
            got = results.get(timeout=_POLL)
        except queue.Empty:
            codes = [w.exitcode for w in workers]
            if any(code not in (None, 0) for code in codes):
                raise HubError(f"{path}: a load generator died (exit codes {codes})") from None
            # A result put just before its process exited may still be in the pipe: one more poll.
            idle_after_exit = idle_after_exit + 1 if None not in codes else 0
            if idle_after_exit > 1:
                raise HubError(f"{path}: a load generator ended without a result") from None
            continue
        if isinstance(got, str):
            raise HubError(f"{path}: a load generator failed: {got}")
        samples.append(got)
    return samples


def _drain(results: Queue[Sample | str]) -> str:
    errors = []
    while True:
        try:
            errors.append(str(results.get(timeout=0.5)))
        except queue.Empty:
            return "; ".join(errors) or "no reason given"
