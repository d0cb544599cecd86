"""CPU time spent by the processes of a run, read from /proc (Linux only).

A `Meter` names groups of processes (the hub, RabbitMQ's beam.smp, every
PostgreSQL process, the fake partner, ...) and takes snapshots of their
utime + stime; the difference of two snapshots is each group's CPU over the
window, and the machine's busy time (/proc/stat, every core, kernel too)
says what nobody was charged for. A process that appears in the window is
counted from zero; one that ends in it loses its last share (a few ticks).
The parsers are pure, the readers only read /proc.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

TICK = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
_PROC = Path("/proc")

# A group's processes, found anew at each snapshot (backends come and go).
Finder = Callable[[], Iterable[int]]


def process_ticks(stat: str) -> int:
    """utime + stime, in clock ticks, from the text of /proc/<pid>/stat."""
    # The command name (field 2) is in parentheses and may hold spaces or ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def machine_ticks(stat: str) -> tuple[int, int]:
    """(busy, all) clock ticks of every core together, from the text of /proc/stat."""
    for line in stat.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            user, nice, system, idle, iowait, irq, softirq, steal = (values + [0] * 8)[:8]
            busy = user + nice + system + irq + softirq + steal  # guest time is within user
            return busy, busy + idle + iowait
    raise ValueError("/proc/stat has no 'cpu' line")


def spent(before: Mapping[int, int], after: Mapping[int, int]) -> int:
    """Ticks spent between two snapshots of one group (pid -> ticks)."""
    return sum(max(ticks - before.get(pid, 0), 0) for pid, ticks in after.items())


def pids(*pid: int) -> Finder:
    """These processes, as long as they live."""
    return lambda: pid


def named(command: str) -> Finder:
    """Every process whose command name (/proc/<pid>/comm) is `command`."""

    def find() -> list[int]:
        found = []
        for entry in _PROC.iterdir():
            if entry.name.isdigit():
                try:
                    if (entry / "comm").read_text().strip() == command:
                        found.append(int(entry.name))
                except OSError:  # it ended while we looked
                    continue
        return found

    return find


@dataclass(frozen=True, slots=True)
class Snapshot:
    groups: dict[str, dict[int, int]]
    busy: int
    total: int


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU seconds of each group over a window, and of the whole machine."""

    groups: dict[str, float]
    busy: float
    capacity: float  # seconds of every core over the window, busy or not


class Meter:
    """Snapshots of the CPU time of named groups of processes."""

    def __init__(self, groups: Mapping[str, Finder]) -> None:
        self._groups = dict(groups)

    def snapshot(self) -> Snapshot:
        """Every group's ticks now; nothing at all where there is no /proc."""
        if not available():
            return Snapshot({}, 0, 0)
        busy, total = machine_ticks((_PROC / "stat").read_text())
        return Snapshot(
            {name: _ticks(find()) for name, find in self._groups.items()},
            busy,
            total,
        )

    @staticmethod
    def usage(before: Snapshot, after: Snapshot) -> Usage:
        return Usage(
            {
                name: spent(before.groups.get(name, {}), ticks) * TICK
                for name, ticks in after.groups.items()
            },
            (after.busy - before.busy) * TICK,
            (after.total - before.total) * TICK,
        )


def available() -> bool:
    """Whether this machine has the /proc this module reads."""
    return (_PROC / "stat").is_file() and (_PROC / "self" / "stat").is_file()


def _ticks(found: Iterable[int]) -> dict[int, int]:
    ticks = {}
    for pid in found:
        try:
            ticks[pid] = process_ticks((_PROC / str(pid) / "stat").read_text())
        except (OSError, ValueError, IndexError):  # it ended, or is a zombie being reaped
            continue
    return ticks
