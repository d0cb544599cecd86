"""The report of `hub bench e2e`: the flows, CPU per record per process, the verdict.

The targets are the end-to-end issue's, on the 2-core machine: closed loop,
at least 1,000 records/s from the post to the partner and at least half the
bare chain's rate; open loop (`--rate`, half that rate in the issue), a p99
from post to partner under 250 ms, beside the bare chain's p99 at the same
offered rate; either way every post answered 200, none
of them lost, and the hub exiting 0 on SIGTERM. Duplicates are reported, not
judged (delivery is at least once). This module only formats.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub.bench.cpu import Usage
from hub.bench.results import PathResult
from hub.bench.stats import percentiles
from hub.bench.tally import Tally

E2E = "end to end"
BARE = "bare chain"
ANSWERS = "ingress answer"

OTHER = "kernel, ended processes"
MACHINE = "machine (all cores)"

MIN_RATE = 1000.0
MIN_BARE_RATIO = 0.5
MAX_P99_MS = 250.0


@dataclass(frozen=True, slots=True)
class Flow:
    """One chain measured from its start to the partner: the hub, or the bare chain."""

    name: str
    records: int
    tally: Tally
    failures: dict[str, int]
    usage: Usage | None
    offered: float | None = None

    @property
    def p50_ms(self) -> float | None:
        return self._percentile(0)

    @property
    def p99_ms(self) -> float | None:
        return self._percentile(1)

    def _percentile(self, which: int) -> float | None:
        if not self.tally.latencies:
            return None
        return percentiles(self.tally.latencies, (50, 99))[which] * 1000

    def cpu_us(self) -> dict[str, float]:
        """Microseconds of CPU per received record: each group, the rest, the machine."""
        return cpu_per_record(self.usage, self.tally.received)

    @property
    def busy(self) -> float | None:
        """The share of every core's time that was busy over the window."""
        if self.usage is None or self.usage.capacity <= 0:
            return None
        return self.usage.busy / self.usage.capacity


def cpu_per_record(usage: Usage | None, records: int) -> dict[str, float]:
    """µs per record of each group, then what no group was charged, then the machine."""
    if usage is None or records <= 0 or usage.capacity <= 0:
        return {}
    per = {name: seconds * 1e6 / records for name, seconds in usage.groups.items()}
    per[OTHER] = (usage.busy - sum(usage.groups.values())) * 1e6 / records
    per[MACHINE] = usage.busy * 1e6 / records
    return per


@dataclass(frozen=True, slots=True)
class Check:
    target: str
    passed: bool


@dataclass(frozen=True, slots=True)
class E2EReport:
    run_id: str
    setup: dict[str, Any]
    answers: PathResult
    e2e: Flow
    bare: Flow | None
    partner_answers: dict[int, int]
    exits: dict[str, int | None]

    @property
    def ratio(self) -> float | None:
        if self.bare is None or self.bare.tally.rate <= 0:
            return None
        return self.e2e.tally.rate / self.bare.tally.rate

    def checks(self) -> list[Check]:
        e2e = self.e2e
        checks = [
            Check("every post answered 200", self.answers.failed == 0 and self.answers.ok > 0),
            Check("none lost", e2e.tally.lost == 0 and e2e.tally.received > 0),
            Check("the hub exits 0", bool(self.exits) and all(c == 0 for c in self.exits.values())),
        ]
        if e2e.offered is not None:
            checks.append(
                Check(
                    f"p99 < {MAX_P99_MS:g} ms at {e2e.offered:g}/s offered",
                    e2e.p99_ms is not None and e2e.p99_ms < MAX_P99_MS,
                )
            )
            return checks
        checks.append(Check(f">= {MIN_RATE:g} records/s", e2e.tally.rate >= MIN_RATE))
        if self.ratio is not None:
            bare = f">= {MIN_BARE_RATIO:g} of the bare chain"
            checks.append(Check(bare, self.ratio >= MIN_BARE_RATIO))
        return checks

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks())

    def flows(self) -> list[Flow]:
        return [self.e2e] if self.bare is None else [self.e2e, self.bare]

    def text(self) -> str:
        header = ", ".join(f"{k} {v}" for k, v in self.setup.items() if v is not None)
        lines = [f"run {self.run_id}: {header}", "", *_flow_table(self.answers, self.flows())]
        lines += ["", *_cpu_table(self.flows())]
        lines += ["", f"partner answers: {_counts(self.partner_answers)}"]
        lines.append(f"hub exit codes: {', '.join(f'{k} {v}' for k, v in self.exits.items())}")
        e2e, bare = self.e2e, self.bare
        if e2e.offered is not None and bare is not None and e2e.p99_ms and bare.p99_ms:
            lines.append(
                f"p99 at {e2e.offered:g}/s offered: end to end {e2e.p99_ms:.0f} ms, bare chain"
                f" {bare.p99_ms:.0f} ms ({e2e.p99_ms / bare.p99_ms:.1f}x)"
            )
        elif self.ratio is not None:
            lines.append(f"ratio: end to end / bare chain {self.ratio:.2f}")
        said = "; ".join(f"{c.target}: {'yes' if c.passed else 'NO'}" for c in self.checks())
        lines.append(f"verdict: {'PASS' if self.passed else 'FAIL'} ({said})")
        return "\n".join(lines)

    def json(self) -> str:
        return json.dumps(
            {
                "run_id": self.run_id,
                "setup": self.setup,
                "answers": _answers_row(self.answers),
                "flows": [_flow_row(f) for f in self.flows()],
                "ratio": None if self.ratio is None else round(self.ratio, 3),
                "partner_answers": {str(k): v for k, v in self.partner_answers.items()},
                "exits": self.exits,
                "verdict": {
                    "passed": self.passed,
                    "checks": [{"target": c.target, "passed": c.passed} for c in self.checks()],
                },
            },
            indent=2,
        )


def _flow_row(flow: Flow) -> dict[str, Any]:
    t = flow.tally
    return {
        "path": flow.name,
        "records": flow.records,
        "accepted": t.accepted,
        "received": t.received,
        "lost": t.lost,
        "duplicates": t.duplicates,
        "unexpected": t.unexpected,
        "seconds": round(t.seconds, 3),
        "rate": round(t.rate, 1),
        "p50_ms": _round(flow.p50_ms),
        "p99_ms": _round(flow.p99_ms),
        "failures": flow.failures,
        "offered": flow.offered,
        "cpu_us_per_record": {k: round(v, 1) for k, v in flow.cpu_us().items()},
        "busy": None if flow.busy is None else round(flow.busy, 3),
    }


def _answers_row(answers: PathResult) -> dict[str, Any]:
    return {
        "records": answers.records,
        "ok": answers.ok,
        "seconds": round(answers.seconds, 3),
        "rate": round(answers.rate, 1),
        "p50_ms": _round(answers.p50_ms),
        "p99_ms": _round(answers.p99_ms),
        "failures": answers.failures,
    }


_ROW = "{:<15} {:>7} {:>8} {:>5} {:>5} {:>8} {:>7} {:>7} {:>7}  {}"
_HEADINGS = [
    "path",
    "records",
    "received",
    "lost",
    "dup",
    "seconds",
    "rate/s",
    "p50 ms",
    "p99 ms",
    "failures",
]


def _flow_table(answers: PathResult, flows: Sequence[Flow]) -> list[str]:
    lines = [
        _ROW.format(*_HEADINGS),
        _ROW.format(
            ANSWERS,
            answers.records,
            answers.ok,
            "-",
            "-",
            f"{answers.seconds:.2f}",
            f"{answers.rate:.0f}",
            _ms(answers.p50_ms),
            _ms(answers.p99_ms),
            _counts(answers.failures),
        ),
    ]
    for f in flows:
        t = f.tally
        failures = dict(f.failures)
        if t.unexpected:
            failures["arrived without a 200"] = t.unexpected
        lines.append(
            _ROW.format(
                f.name,
                f.records,
                t.received,
                t.lost,
                t.duplicates,
                f"{t.seconds:.2f}",
                f"{t.rate:.0f}",
                _ms(f.p50_ms),
                _ms(f.p99_ms),
                _counts(failures),
            )
        )
    return lines


def _cpu_table(flows: Sequence[Flow]) -> list[str]:
    per = [flow.cpu_us() for flow in flows]
    if not any(per):
        return ["CPU per record: not measured (no /proc)"]
    names = [n for n in _ordered(per) if n not in (OTHER, MACHINE)] + [OTHER, MACHINE]
    row = "{:<28}" + " {:>12}" * len(flows)
    lines = [row.format("CPU µs per record", *(f.name for f in flows))]
    for name in names:
        lines.append(row.format(name, *(_us(p.get(name)) for p in per)))
    lines.append(row.format("busy (share of all cores)", *(_share(f.busy) for f in flows)))
    return lines


def _ordered(per: Sequence[Mapping[str, float]]) -> list[str]:
    names: list[str] = []
    for p in per:
        names += [n for n in p if n not in names]
    return names


def _counts(counts: Mapping[Any, int]) -> str:
    return ", ".join(f"{kind} x{n}" for kind, n in counts.items()) or "0"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"
