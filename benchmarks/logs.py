"""Reading big logs: index build, first record, filter scans, peak RSS, `krec show | tail`.

Synthesizes a realistic log (benchmarks/synth.py; 1,000,000 messages by default)
in a temporary directory, or uses ``--log PATH``, then measures in fresh
processes so the figures are not inflated by the synthesis:

* index build (target <= 1 s) and time to the first record, in-process and as
  ``krec show LOG | head -1`` wall time (Python start-up included);
* a set of typical filters (target <= 2 s each on 1M messages), with matches;
* peak RSS of the reading process (target <= 300 MB);
* ``krec show LOG | tail -1`` and ``--json`` throughput;
* ``krec show LOG -f type:execute_request`` and ``krec stats LOG`` as whole processes
  (target <= 3 s each on 1M messages): median wall and CPU (helpers included) of 3 runs.

``python benchmarks/logs.py --count 100000`` for a quick run while developing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from synth import big_log

HERE = os.path.dirname(os.path.abspath(__file__))
KREC = [sys.executable, "-m", "krec.recorder"]
FILTERS = [
    "type:execute_request",
    "ch:shell from:kernel",
    "status:error",
    "ValueError",
    '"bad value 42"',
    "accuracy",
    "type:comm_* or type:display_data",
    "event:*",
    "t>5m",
    "PARENT",  # replaced by parent:<short id of a request in the middle of the log>
    "not type:status",
]


def measure(path: str) -> dict[str, object]:
    """Runs in a fresh process: reading figures and this process's peak RSS."""
    from krec.recorder.filter import compile_filter
    from krec.recorder.log.oneline import short_id
    from krec.recorder.log.reader import LogReader

    out: dict[str, object] = {}
    start = time.perf_counter()
    first = LogReader(path, index=False)
    first.index_more(1000)
    record = first[1]
    _ = (record.msg_type, record.content)
    out["first_record_s"] = time.perf_counter() - start
    first.close()

    start = time.perf_counter()
    reader = LogReader(path)
    out["index_s"] = time.perf_counter() - start
    out["records"] = len(reader)
    out["bytes"] = os.path.getsize(path)
    middle = next(
        reader[i]
        for i in range(len(reader) // 2, len(reader))
        if reader[i].msg_type == "execute_request"
    )
    scans = []
    for text in FILTERS:
        if text == "PARENT":
            text = f"parent:{short_id(middle.msg_id)}"
        flt = compile_filter(text)
        start = time.perf_counter()
        cpu = time.process_time()
        hits = flt.scan(reader)
        scans.append(
            {
                "filter": text,
                "s": time.perf_counter() - start,
                "cpu_s": time.process_time() - cpu,
                "matches": len(hits),
            }
        )
    out["scans"] = scans
    reader.close()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def whole(args: list[str], runs: int = 3) -> tuple[float, float]:
    """Median wall and CPU (user + sys, helper processes included) of ``krec ARGS``."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([*KREC, *args], check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def pipeline(cmd: str) -> float:
    start = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="messages to synthesize")
    parser.add_argument("--log", help="measure this log instead of synthesizing one")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--skip-show", action="store_true", help="skip the show pipelines")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return

    with big_log(args.log, args.count) as path:
        report(path, args.skip_show)


def report(path: str, skip_show: bool) -> None:
    child = subprocess.run(
        [sys.executable, __file__, "--measure", path],
        capture_output=True,
        text=True,
        check=True,
    )
    m = json.loads(child.stdout)
    n, size = m["records"], m["bytes"]
    print(f"log: {n} records, {size / 1e6:.0f} MB ({size / n:.0f} B per record), {path}")
    print(f"  index build            {m['index_s']:6.2f} s    target <= 1 s")
    print(f"  first record           {m['first_record_s'] * 1e3:6.1f} ms   (in process)")
    print("  filter scans (target <= 2 s each):")
    for s in m["scans"]:
        print(
            f"    {s['filter']:<36} {s['s']:6.2f} s  cpu {s['cpu_s']:5.2f} s  "
            f"{s['matches']:>8} matches"
        )
    print(f"  peak RSS (index + scans) {m['peak_rss_mb']:6.0f} MB  target <= 300 MB")
    print("  whole process, median of 3 (target <= 3 s each on 1M):")
    for args in (["show", path, "-f", "type:execute_request"], ["stats", path]):
        wall, cpu = whole(args)
        print(f"    krec {' '.join(args[:1] + args[2:]):<34} {wall:6.2f} s  cpu {cpu:5.2f} s")
    if not skip_show:
        krec = " ".join(KREC)
        head = pipeline(f"{krec} show {path} | head -1")
        print(f"  krec show | head -1    {head:6.2f} s    (wall, Python start-up included)")
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        for flag in ("", "--json"):
            wall = pipeline(f"{krec} show {flag} {path} | tail -1")
            print(
                f"  krec show {flag or '':<6}| tail  {wall:6.2f} s    "
                f"{n / wall / 1e3:6.0f} k records/s  {size / wall / 1e6:5.0f} MB/s"
            )
        rss = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
        print(f"  peak RSS of krec show  {rss:6.0f} MB")


if __name__ == "__main__":
    main()
