"""CPU time of processes from /proc: utime + stime, every thread included, as the benches count
it (bench_peer's stack and LiteLLM, grpc_floor's two ends)."""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def process_tree(roots: list[int]) -> list[int]:
    """The processes and every descendant of theirs."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, pending = [], list(roots)
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending += children.get(pid, [])
    return found


def cpu_seconds(pids: list[int]) -> float | None:
    """utime + stime of the processes, in seconds (None when there are none)."""
    if not pids:
        return None
    ticks = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks * CLOCK_TICK_S
