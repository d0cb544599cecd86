"""What a measured path produced: one process's sample, and a path's result.

A load-generator process or the raw publisher returns a `Sample` (picklable,
so that it can cross a process boundary); `combine` merges the samples of
one path into a `PathResult`, the row the report prints. Only answers that
count as OK contribute a latency; every other outcome is a failure, counted
by its HTTP status or exception name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from hub.bench.stats import percentiles


@dataclass(slots=True)
class Sample:
    """One process's measurements on one path.

    `started` and `finished` are `time.monotonic()` readings, which on Linux
    and macOS share one clock across the processes of a machine. `sent` maps
    the index of each record answered OK to when its post started (or was
    due, open loop), on that same clock; `cpu` is the CPU seconds the
    process spent measuring.
    """

    records: int
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    started: float = 0.0
    finished: float = 0.0
    sent: dict[int, float] = field(default_factory=dict)
    cpu: float = 0.0


@dataclass(frozen=True, slots=True)
class PathResult:
    """One row of the report: how fast one path took `records` records."""

    path: str
    records: int
    ok: int
    seconds: float
    p50_ms: float | None
    p99_ms: float | None
    failures: dict[str, int]
    offered: float | None = None

    @property
    def rate(self) -> float:
        """OK answers (or confirms) per second of the whole run."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


def combine(path: str, samples: Sequence[Sample], offered: float | None = None) -> PathResult:
    """Merge the samples of one path: its time runs from the first start to the last finish."""
    if not samples:
        raise ValueError(f"{path}: no samples to combine")
    latencies = [latency for sample in samples for latency in sample.latencies]
    failures: Counter[str] = Counter()
    for sample in samples:
        failures.update(sample.failures)
    p50, p99 = percentiles(latencies, (50, 99)) if latencies else (None, None)
    return PathResult(
        path=path,
        records=sum(sample.records for sample in samples),
        ok=len(latencies),
        seconds=max(s.finished for s in samples) - min(s.started for s in samples),
        p50_ms=None if p50 is None else p50 * 1000,
        p99_ms=None if p99 is None else p99 * 1000,
        failures=dict(sorted(failures.items())),
        offered=offered,
    )
