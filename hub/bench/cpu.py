"""CPU time spent by the processes of a run, read from /proc (Linux only).

A `Meter` names groups of processes (the hub, RabbitMQ's beam.smp, every
PostgreSQL process, the fake partner, ..., and every other process) and
takes snapshots of the CPU time (utime + stime) of each; the difference of
two snapshots is each group's CPU over the window. Processes come and go
(PostgreSQL's autovacuum workers, other people's test runs): a group found
by name also counts what its members' ended children used (cutime +
cstime, added to the parent when it reaps them), so a process that ends in
the window is still counted, by its parent. The machine's busy time
(/proc/stat, every core) less every group's is the kernel's own
(interrupts, softirq) and that of processes nobody in a group reaped.

The parsers are pure; the readers only read /proc.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

TICK = 1.0 / os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class Stat:
    """One process's line of /proc/<pid>/stat, the fields a meter needs (clock ticks)."""

    comm: str  # the command name, at most 15 characters
    ppid: int
    own: int  # utime + stime
    reaped: int  # cutime + cstime: its children that ended and were waited for


def parse_stat(text: str) -> Stat:
    """Parse the text of /proc/<pid>/stat (proc(5): fields 2, 4, 14-17)."""
    # The command name (field 2) is in parentheses and may hold spaces or ')'.
    end = text.rindex(")")
    fields = text[end + 2 :].split()
    return Stat(
        comm=text[text.index("(") + 1 : end],
        ppid=int(fields[1]),
        own=int(fields[11]) + int(fields[12]),
        reaped=int(fields[13]) + int(fields[14]),
    )


def machine_ticks(stat: str) -> tuple[int, int]:
    """(busy, all) clock ticks of every core together, from the text of /proc/stat.

    Busy is user, nice, system, irq and softirq (guest time is within user);
    time stolen by a hypervisor is in `all` only: nobody here used it.
    """
    for line in stat.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            user, nice, system, idle, iowait, irq, softirq, steal = (values + [0] * 8)[:8]
            busy = user + nice + system + irq + softirq
            return busy, busy + idle + iowait + steal
    raise ValueError("/proc/stat has no 'cpu' line")


@dataclass(frozen=True, slots=True)
class Group:
    """How to find a group's processes, anew at each snapshot, and whether to count
    their reaped children (right for a closed family such as PostgreSQL's, wrong for a
    process whose children were started before the window)."""

    find: Callable[[Mapping[int, Stat]], Iterable[int]]
    reaped: bool = False

    def ticks(self, stats: Mapping[int, Stat]) -> int:
        found = (stats[pid] for pid in self.find(stats) if pid in stats)
        return sum(s.own + (s.reaped if self.reaped else 0) for s in found)


def pids(*pid: int) -> Group:
    """These processes, themselves only."""
    return Group(lambda stats: pid)


def named(command: str) -> Group:
    """Every process whose command name is `command` (at most 15 characters), and its
    reaped children."""

    def find(stats: Mapping[int, Stat]) -> list[int]:
        return [pid for pid, stat in stats.items() if stat.comm == command]

    return Group(find, reaped=True)


@dataclass(frozen=True, slots=True)
class Snapshot:
    groups: dict[str, int]
    busy: int
    total: int


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU seconds of each group over a window, and of the whole machine."""

    groups: dict[str, float]
    busy: float
    capacity: float  # seconds of every core over the window, busy or not


class Meter:
    """Snapshots of the CPU time of named groups of processes.

    With `rest`, every other process of the machine (other people's work,
    kernel threads) is a group of that name, reaped children included, but
    for the children of this process: those are the caller's to count.
    """

    def __init__(self, groups: Mapping[str, Group], rest: str | None = None) -> None:
        self._groups = dict(groups)
        self._rest = rest

    def snapshot(self) -> Snapshot:
        """Every group's ticks now; nothing at all where there is no /proc."""
        if not available():
            return Snapshot({}, 0, 0)
        busy, total = machine_ticks((_PROC / "stat").read_text())
        stats = _stats()
        groups = {name: group.ticks(stats) for name, group in self._groups.items()}
        if self._rest is not None:
            groups[self._rest] = self._others().ticks(stats)
        return Snapshot(groups, busy, total)

    def _others(self) -> Group:
        me = os.getpid()

        def find(stats: Mapping[int, Stat]) -> list[int]:
            mine = {pid for group in self._groups.values() for pid in group.find(stats)}
            return [p for p, s in stats.items() if p not in mine and p != me and s.ppid != me]

        return Group(find, reaped=True)

    @staticmethod
    def usage(before: Snapshot, after: Snapshot) -> Usage:
        return Usage(
            {
                name: max(ticks - before.groups.get(name, 0), 0) * TICK
                for name, ticks in after.groups.items()
            },
            (after.busy - before.busy) * TICK,
            (after.total - before.total) * TICK,
        )


def available() -> bool:
    """Whether this machine has the /proc this module reads."""
    return (_PROC / "stat").is_file() and (_PROC / "self" / "stat").is_file()


def _stats() -> dict[int, Stat]:
    stats = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = parse_stat((entry / "stat").read_text())
            except (OSError, ValueError, IndexError):  # it ended while we looked
                continue
    return stats
