"""Matching what was sent with what arrived at the partner: pure, no I/O, no clocks.

`sent` maps each record's hub UUID to when its journey started (the post to
the ingress, or the publish of the bare chain), for the records that were
accepted (answered 200 / confirmed). `arrivals` maps a hub UUID to every
time the partner accepted a save of it. Both are `time.monotonic()`
readings, one clock for every process of the machine.

    received    accepted records that reached the partner at least once
    lost        accepted records that never reached it (must be 0)
    duplicates  saves beyond the first of a record, over every record
    unexpected  UUIDs that arrived but were never accepted (e.g. a post that
                timed out at the client after the hub had it)

A record's latency runs from its start to its first arrival; the rate is
`received` over the time from the first start to the last first arrival.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Tally:
    accepted: int
    received: int
    lost: int
    duplicates: int
    unexpected: int
    latencies: list[float] = field(default_factory=list)  # seconds, in no particular order
    started: float | None = None
    finished: float | None = None

    @property
    def seconds(self) -> float:
        if self.started is None or self.finished is None:
            return 0.0
        return max(self.finished - self.started, 0.0)

    @property
    def rate(self) -> float:
        """Records received per second, first start to last arrival."""
        return self.received / self.seconds if self.seconds > 0 else 0.0


def tally(sent: Mapping[str, float], arrivals: Mapping[str, Sequence[float]]) -> Tally:
    """Match `sent` with `arrivals` by hub UUID (see the module docstring)."""
    latencies: list[float] = []
    last: float | None = None
    for uuid, start in sent.items():
        times = arrivals.get(uuid)
        if not times:
            continue
        first = min(times)
        latencies.append(first - start)
        last = first if last is None else max(last, first)
    return Tally(
        accepted=len(sent),
        received=len(latencies),
        lost=len(sent) - len(latencies),
        duplicates=sum(max(len(times) - 1, 0) for times in arrivals.values()),
        unexpected=sum(1 for uuid, times in arrivals.items() if times and uuid not in sent),
        latencies=latencies,
        started=min(sent.values()) if sent else None,
        finished=last,
    )
