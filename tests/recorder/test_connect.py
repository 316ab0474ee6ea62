"""Port choice: concurrent krec processes never hand the same port to two kernels."""

from __future__ import annotations

import subprocess
import sys

from krec.recorder.connect import CHANNELS, free_ports

CHOOSE = (
    "from krec.recorder.connect import free_ports\n"
    "print(' '.join(map(str, free_ports('127.0.0.1', 200))))"
)


def test_ports_chosen_by_other_processes_are_not_chosen_again() -> None:
    # each process chooses ports that no kernel has bound yet; the reservations keep the
    # others away from them (the replay kernels of a batch start side by side)
    procs = [
        subprocess.run(
            [sys.executable, "-c", CHOOSE], capture_output=True, text=True, timeout=60, check=True
        )  # fmt: skip
        for _ in range(3)
    ]
    chosen = [set(map(int, p.stdout.split())) for p in procs]
    mine = set(free_ports("127.0.0.1", 200))
    chosen.append(mine)
    assert all(len(c) == 200 for c in chosen)
    for i, a in enumerate(chosen):
        for b in chosen[i + 1 :]:
            assert not a & b, sorted(a & b)


def test_one_call_gives_distinct_ports() -> None:
    ports = free_ports("127.0.0.1", len(CHANNELS))
    assert len(set(ports)) == len(CHANNELS)
