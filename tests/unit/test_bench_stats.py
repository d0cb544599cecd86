"""Latency percentiles of `hub bench`: linear interpolation between closest ranks."""

from __future__ import annotations

import random
import statistics

import pytest

from hub.bench.stats import percentile, percentiles


def test_one_value_is_every_percentile() -> None:
    assert percentiles([7.0], (0, 50, 99, 100)) == [7.0, 7.0, 7.0, 7.0]


def test_ends_are_min_and_max() -> None:
    values = [3.0, 1.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 3.0


def test_median_of_an_even_count_is_between_the_middle_two() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)


def test_one_to_a_hundred() -> None:
    values = [float(v) for v in range(1, 101)]
    p50, p99 = percentiles(values, (50, 99))
    assert p50 == pytest.approx(50.5)
    assert p99 == pytest.approx(99.01)


def test_order_of_the_input_does_not_matter() -> None:
    values = [float(v) for v in range(1000)]
    shuffled = values[:]
    random.Random(7).shuffle(shuffled)
    assert percentiles(shuffled, (50, 99)) == percentiles(values, (50, 99))


def test_input_is_not_modified() -> None:
    values = [3.0, 1.0, 2.0]
    percentile(values, 50)
    assert values == [3.0, 1.0, 2.0]


def test_agrees_with_statistics_inclusive_quantiles() -> None:
    rng = random.Random(1)
    values = [rng.expovariate(1 / 5) for _ in range(501)]
    expected = statistics.quantiles(values, n=100, method="inclusive")
    assert percentiles(values, (50, 99)) == pytest.approx([expected[49], expected[98]])


def test_accepts_any_iterable() -> None:
    assert percentile((v for v in (1.0, 2.0, 3.0)), 50) == 2.0


def test_no_values_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


@pytest.mark.parametrize("q", [-0.1, 100.5])
def test_percentile_outside_0_to_100_is_an_error(q: float) -> None:
    with pytest.raises(ValueError, match="not within"):
        percentile([1.0, 2.0], q)
