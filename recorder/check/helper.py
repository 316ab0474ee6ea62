"""A helper process for checking big logs: ``python -m krec.recorder.check.helper``.

Reads one pickled job from stdin (the log's path, its records' offsets, where the
last one ends, its header and start time, the ids of the rules that judge each
message alone, the options), runs those rules over every record and writes the
pickled findings to stdout. ``check_log(..., helper=True)`` starts it and runs the
other rules meanwhile; a separate program rather than multiprocessing, as for the
filter's helper.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from krec.recorder.check.base import CheckOptions, Finding, Rule
    from krec.recorder.log.reader import LogReader


def worth_a_helper(reader: LogReader) -> bool:
    """Is the log big enough, and a second core idle, for a helper to pay off?"""
    from krec.recorder.log.reader import helper_pays_off

    n = len(reader)
    if n < 2 or reader.upgrade_record is not None:
        return False
    return helper_pays_off(reader.span_bytes(0, n)) and a_core_is_idle()


def a_core_is_idle() -> bool:
    """Does no other process keep every other core busy right now?

    The helper reads and parses the whole log again (about half again the CPU of a
    pass): with a core to itself it shortens the pass by a fifth, but where other
    processes load the machine it competes with them and the pass takes longer.
    Judged by the number of runnable threads (Linux's /proc/loadavg), the least of a
    few samples so that a passing spike does not count; True where it cannot be read.
    """
    cores = os.cpu_count() or 1
    try:
        fewest = None
        for attempt in range(3):
            if attempt:
                time.sleep(0.01)
            with open("/proc/loadavg") as f:
                running = int(f.read().split()[3].split("/")[0])  # this process included
            fewest = running if fewest is None else min(fewest, running)
    except (OSError, ValueError, IndexError):
        return True
    return fewest is not None and fewest < cores


class AloneHelper:
    """The helper process judging every message of a log with the ``alone`` rules."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process

    @classmethod
    def start(
        cls, reader: LogReader, rules: Sequence[type[Rule]], options: CheckOptions | None
    ) -> AloneHelper | None:
        n = len(reader)
        job = pickle.dumps(
            (
                reader.path,
                reader.offsets.tobytes(),
                reader.record_end(n - 1),
                reader.header,
                reader.start_ns,
                [r.id for r in rules],
                options,
            )
        )
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "krec.recorder.check.helper"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            assert process.stdin is not None
            process.stdin.write(job)
            process.stdin.close()
        except Exception:  # no second process here: every rule runs in this one
            return None
        return cls(process)

    def result(self) -> list[Finding] | None:
        """The helper's findings, or None when it failed (the caller judges itself)."""
        from krec.recorder.log.reader import helper_result

        return helper_result(self._process)  # type: ignore[no-any-return]

    def stop(self) -> None:
        """End the helper now (the pass it helps was given up)."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


def _main() -> None:
    from krec.recorder.check.runner import Checker, all_rules
    from krec.recorder.log.reader import LogReader

    path, offsets, end, header, start_ns, ids, options = pickle.loads(sys.stdin.buffer.read())
    rules = [r for r in all_rules() if r.id in ids]
    checker = Checker(header, rules, options, start_ns=start_ns)
    judge = checker.judge
    with LogReader.part(path, offsets, end) as reader:
        for index, raw in reader.raw_records():
            judge(index, raw)
    sys.stdout.buffer.write(pickle.dumps(checker.ctx.findings))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _main()
