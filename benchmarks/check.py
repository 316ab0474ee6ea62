"""`krec check` on a big log: wall time and peak anonymous RSS (1M messages: <= 15 s, <= 300 MB).

Synthesizes a realistic log with benchmarks/synth.py (1,000,000 messages by default)
in a temporary directory, or uses ``--log PATH``. Then, in fresh processes so that
the synthesis does not count:

* the check itself (index the log, run every rule), timed in-process, with the
  peak anonymous RSS sampled from /proc/self/smaps_rollup every 20 ms (the log is
  memory-mapped: its file pages are not counted, as in the viewer's target);
* ``krec check LOG > /dev/null`` end to end (Python start-up and imports included).

The synthesized log has deliberate-looking faults of its own (synth.py skips an
execution count when a cell is not an execution, and sends widget updates to a comm
it never opened), so the check also exercises the reporting path.
``python benchmarks/check.py --count 100000`` for a quick run while developing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections import Counter

from synth import big_log

HERE = os.path.dirname(os.path.abspath(__file__))
KREC = [sys.executable, "-m", "krec.recorder"]
TARGET_S = 15.0
TARGET_MB = 300.0


def anonymous_kb() -> int:
    """This process's anonymous resident memory (kB), file-backed pages excluded."""
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Anonymous:"):
                return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    """Samples the anonymous RSS every 20 ms; ``peak`` in kB."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = anonymous_kb()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, anonymous_kb())


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(path: str) -> dict[str, object]:
    """Runs in a fresh process: index + check figures and the peak anonymous RSS."""
    from krec.recorder.check.runner import check_log
    from krec.recorder.log.reader import LogReader

    sampler = Sampler()
    sampler.start()
    start = time.perf_counter()
    cpu = time.process_time()
    with LogReader(path) as reader:
        indexed = time.perf_counter()
        findings = check_log(reader, helper=True).findings  # as `krec check` runs it
        records = len(reader)
    out: dict[str, object] = {
        "records": records,
        "index_s": indexed - start,
        "check_s": time.perf_counter() - indexed,
        "total_s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu,
        "helper_cpu_s": _children_cpu(),
        "findings": len(findings),
        "by_rule": Counter(f.rule for f in findings).most_common(),
    }
    sampler.stop.set()
    sampler.join()
    out["peak_anon_mb"] = max(sampler.peak, anonymous_kb()) / 1024
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="messages to synthesize")
    parser.add_argument("--log", help="check this log instead of synthesizing one")
    parser.add_argument("--runs", type=int, default=1, help="repeat the in-process check")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return

    with big_log(args.log, args.count) as path:
        runs = []
        for _ in range(args.runs):
            done = subprocess.run(
                [sys.executable, __file__, "--measure", path],
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(done.stdout))
        m = min(runs, key=lambda r: r["total_s"])
        n = m["records"]
        print(f"krec check, {n:,} records ({args.runs} run(s), best shown):")
        print(f"  index                 {m['index_s']:6.2f} s")
        print(f"  check (all rules)     {m['check_s']:6.2f} s   "
              f"{m['check_s'] / n * 1e6:.1f} us/record, cpu {m['cpu_s']:.1f} s "
              f"+ helper {m['helper_cpu_s']:.1f} s")  # fmt: skip
        print(f"  index + check         {m['total_s']:6.2f} s   target <= {TARGET_S:.0f} s "
              f"on 1,000,000 ({m['total_s'] * 1_000_000 / n:.1f} s scaled)")  # fmt: skip
        print(f"  peak anonymous RSS    {m['peak_anon_mb']:6.0f} MB   target <= {TARGET_MB:.0f} MB")
        rules = ", ".join(f"{rule} {count}" for rule, count in m["by_rule"])
        print(f"  findings              {m['findings']:,} ({rules or 'none'})")
        before = _children_cpu()
        start = time.perf_counter()
        with open(os.devnull, "w") as devnull:
            code = subprocess.run([*KREC, "check", path], stdout=devnull, check=False).returncode
        print(f"  `krec check LOG`      {time.perf_counter() - start:6.2f} s   end to end, "
              f"cpu {_children_cpu() - before:.1f} s, exit status {code}")  # fmt: skip
        with open("/proc/loadavg") as f:
            print(f"  load average          {f.read().split()[0]} (2 cores are shared)")


if __name__ == "__main__":
    main()
