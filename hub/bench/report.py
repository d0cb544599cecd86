"""The report of a run: a table, the ratios, and a verdict against the targets.

The targets are issue item 10's: closed loop, the ingress takes at least
2,000 records/s and at least half the raw-publish rate; open loop (an
offered rate, 1,000/s in the issue), its p99 is under 25 ms; and either way
every answer is OK, which for the ingress means confirmed by RabbitMQ. This
module only formats: it measures nothing and prints nothing itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hub.bench.results import PathResult

INGRESS = "ingress"
BARE = "bare handler"
PUBLISH = "raw publish"

MIN_RATE = 2000.0
MIN_PUBLISH_RATIO = 0.5
MAX_P99_MS = 25.0


@dataclass(frozen=True, slots=True)
class Check:
    target: str
    passed: bool


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a run found, and how it was run (for the header)."""

    run_id: str
    setup: dict[str, Any]
    paths: Sequence[PathResult]

    def path(self, name: str) -> PathResult | None:
        return next((p for p in self.paths if p.path == name), None)

    def ratios(self) -> dict[str, float | None]:
        ingress = self.path(INGRESS)
        return {
            f"ingress/{base.replace(' ', '-')}": _ratio(ingress, self.path(base))
            for base in (PUBLISH, BARE)
        }

    def checks(self) -> list[Check]:
        ingress = self.path(INGRESS)
        if ingress is None:
            return []
        checks = [Check("every answer OK", ingress.failed == 0 and ingress.ok > 0)]
        if ingress.offered is not None:
            p99 = ingress.p99_ms
            checks.append(
                Check(f"p99 < {MAX_P99_MS:g} ms at {ingress.offered:g}/s offered", _below(p99))
            )
            return checks
        checks.append(Check(f">= {MIN_RATE:g} records/s", ingress.rate >= MIN_RATE))
        ratio = self.ratios()["ingress/raw-publish"]
        if ratio is not None:
            checks.append(
                Check(f">= {MIN_PUBLISH_RATIO:g} of raw publish", ratio >= MIN_PUBLISH_RATIO)
            )
        return checks

    @property
    def passed(self) -> bool:
        checks = self.checks()
        return bool(checks) and all(check.passed for check in checks)

    def text(self) -> str:
        header = ", ".join(f"{k} {v}" for k, v in self.setup.items() if v is not None)
        lines = [f"run {self.run_id}: {header}", "", *_table(self.paths), ""]
        ratios = self.ratios()
        if any(value is not None for value in ratios.values()):
            lines.append(
                "ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items() if v is not None)
            )
        checks = self.checks()
        if checks:
            verdict = "PASS" if self.passed else "FAIL"
            said = "; ".join(f"{c.target}: {'yes' if c.passed else 'NO'}" for c in checks)
            lines.append(f"verdict: {verdict} ({said})")
        return "\n".join(lines)

    def json(self) -> str:
        return json.dumps(
            {
                "run_id": self.run_id,
                "setup": self.setup,
                "paths": [_row(p) for p in self.paths],
                "ratios": {k: None if v is None else round(v, 3) for k, v in self.ratios().items()},
                "verdict": {
                    "passed": self.passed,
                    "checks": [{"target": c.target, "passed": c.passed} for c in self.checks()],
                },
            },
            indent=2,
        )


def _ratio(ingress: PathResult | None, base: PathResult | None) -> float | None:
    if ingress is None or base is None or base.rate == 0:
        return None
    return ingress.rate / base.rate


def _below(p99_ms: float | None) -> bool:
    return p99_ms is not None and p99_ms < MAX_P99_MS


def _row(result: PathResult) -> dict[str, Any]:
    return {
        "path": result.path,
        "records": result.records,
        "ok": result.ok,
        "seconds": round(result.seconds, 3),
        "rate": round(result.rate, 1),
        "p50_ms": None if result.p50_ms is None else round(result.p50_ms, 2),
        "p99_ms": None if result.p99_ms is None else round(result.p99_ms, 2),
        "failures": result.failures,
        "offered": result.offered,
    }


def _table(paths: Sequence[PathResult]) -> list[str]:
    row = "{:<13} {:>8} {:>8} {:>9} {:>7} {:>7}  {}"
    lines = [row.format("path", "records", "seconds", "rate/s", "p50 ms", "p99 ms", "failures")]
    for p in paths:
        failures = ", ".join(f"{kind} x{n}" for kind, n in p.failures.items()) or "0"
        lines.append(
            row.format(
                p.path,
                p.records,
                f"{p.seconds:.2f}",
                f"{p.rate:.0f}",
                _ms(p.p50_ms),
                _ms(p.p99_ms),
                failures,
            )
        )
    return lines


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
