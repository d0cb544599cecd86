"""Latency percentiles: small pure functions, no I/O, no clocks."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(values: Iterable[float], q: float) -> float:
    """The `q`-th percentile (0 <= q <= 100) of `values`; see `percentiles`."""
    return percentiles(values, (q,))[0]


def percentiles(values: Iterable[float], qs: Sequence[float]) -> list[float]:
    """The percentiles `qs` of `values`, sorting them once.

    Linear interpolation between the closest ranks (numpy's default, and
    `statistics.quantiles(method="inclusive")`): p0 is the minimum, p100 the
    maximum. Raises ValueError for no values or a q outside [0, 100].
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    return [_interpolate(ordered, q) for q in qs]


def _interpolate(ordered: Sequence[float], q: float) -> float:
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not within [0, 100]")
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
