"""The catalog targets, measured side by side in one run.

* `krec catalog` of the 1M-message synthetic log, as a whole process: wall time
  (target <= 5 s) and peak memory (the process's peak RSS, VmHWM; target <= 500 MB);
  beside it the same catalog with the findings left out (krec check stubbed) and
  `krec check LOG` alone, the two halves that run in parallel;
* `krec query` of a GROUP BY over 10M messages (ten such logs, catalogued once
  beforehand), as a whole process (target <= 1 s);
* batch replay of 8 recorded sessions (recorded here through `krec record`) with
  `krec replay LOG... --workers 2` (a 2-worker LocalCluster, its start-up
  included) against `krec replay LOG` run for each one after another (target:
  >= 1.6x faster).

``python benchmarks/catalog.py --count 100000 --logs 2`` for a quick run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recording import attach, start_recording, stop_recording
from synth import big_log

KREC = [sys.executable, "-m", "krec.recorder"]
SESSION_CELLS = [
    "import time; time.sleep(0.4)",
    "x = sum(i * i for i in range(20000)); print(x % 97)",
    "import time; time.sleep(0.4)",
    "from IPython.display import display, HTML; display(HTML('<b>%d</b>' % x))",
    "import time; time.sleep(0.4)",
    "for i in range(5): print(i)",
]


#: `krec catalog LOG -o OUT` with no findings: what the catalog costs besides krec check
NO_FINDINGS = """\
import contextlib, sys
from krec.recorder.catalog import writer
writer._checked_aside = lambda path, size: contextlib.nullcontext(lambda: ([], {}))
writer.build_catalog([sys.argv[1]], sys.argv[2])
"""


def timed(cmd: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MB, exit status) of a whole process."""
    wall, _, peak, code = measured(cmd)
    return wall, peak, code


def measured(cmd: list[str]) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS MB, exit status) of a whole process (CPU and
    peak of it and the children it waited for)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024, proc.returncode


def record_sessions(n: int, folder: Path) -> list[Path]:
    logs = []
    for i in range(n):
        log, cf = folder / f"session{i}.krec", folder / f"cf{i}.json"
        proc = start_recording(log, cf)
        try:
            kc = attach(cf)
            for code in SESSION_CELLS:
                kc.execute_interactive(code, timeout=60, output_hook=lambda m: None)
            kc.stop_channels()
        finally:
            stop_recording(proc)
        logs.append(log)
    return logs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="messages per synthetic log")
    parser.add_argument("--logs", type=int, default=10, help="logs for the GROUP BY")
    parser.add_argument("--sessions", type=int, default=8, help="sessions for batch replay")
    parser.add_argument("--log", help="use this log instead of synthesizing one")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="krec-bench-catalog-"))
    try:
        with big_log(args.log, args.count) as path:
            out = tmp / "one"
            wall, cpu, peak, code = measured([*KREC, "catalog", path, "-o", str(out), "-q"])
            size = os.path.getsize(path) / 1e6
            print(f"krec catalog, {args.count:,} messages ({size:.0f} MB log), whole process:")
            print(f"  wall {wall:6.2f} s   target <= 5 s     (exit {code})")
            print(f"  cpu  {cpu:6.2f} s   (krec check runs in a process of its own, not counted)")
            print(f"  peak {peak:6.0f} MB  target <= 500 MB")
            bare = [sys.executable, "-c", NO_FINDINGS, path, str(tmp / "bare")]
            wall, cpu, peak, _ = measured(bare)
            print(f"  without the findings: wall {wall:.2f} s, cpu {cpu:.2f} s, peak {peak:.0f} MB")
            wall, cpu, peak, _ = measured([*KREC, "check", path])
            print(f"  krec check alone:     wall {wall:.2f} s, cpu {cpu:.2f} s, peak {peak:.0f} MB")
            folder = tmp / "ten"
            folder.mkdir()
            for i in range(args.logs):
                # the same messages under ten different headers: ten recordings
                dest = folder / f"log{i}.krec"
                shutil.copy(path, dest)
                _retitle(dest, i)
            cat = tmp / "cat10"
            start = time.perf_counter()
            subprocess.run([*KREC, "catalog", str(folder), "-o", str(cat), "-q"], check=True)
            print(f"  (catalogued {args.logs} logs in {time.perf_counter() - start:.1f} s)")
        sql = (
            "SELECT msg_type, channel, count(*) AS n, avg(size) AS mean_size, "
            "quantile_cont(latency_ms, 0.9) AS p90 FROM messages GROUP BY ALL ORDER BY n DESC"
        )
        walls = [timed([*KREC, "query", str(cat), sql])[0] for _ in range(3)]
        total = args.logs * args.count
        print(f"krec query GROUP BY over {total:,} messages, whole process (best of 3):")
        print(
            f"  wall {min(walls):6.2f} s   target <= 1 s   (runs: "
            f"{', '.join(f'{w:.2f}' for w in walls)})"
        )

        sessions = tmp / "sessions"
        sessions.mkdir()
        logs = record_sessions(args.sessions, sessions)
        start = time.perf_counter()
        for log in logs:
            subprocess.run(
                [*KREC, "replay", str(log), "-o", str(tmp / "seq" / log.name)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
            )
        sequential = time.perf_counter() - start
        batch, _, code = timed(
            [*KREC, "replay", *map(str, logs), "--workers", "2", "-o", str(tmp / "batch")]
        )
        print(f"batch replay of {len(logs)} recorded sessions:")
        print(f"  one after another  {sequential:6.2f} s")
        print(f"  2-worker cluster   {batch:6.2f} s   (exit {code})")
        print(f"  speed-up           {sequential / batch:6.2f}x  target >= 1.6x")
        with open("/proc/loadavg") as f:
            print(f"load average {f.read().split()[0]} (2 cores are shared)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _retitle(path: Path, i: int) -> None:
    """Give a copied log a header of its own (created 1 us later each), so it is another
    recording with the same messages."""
    import msgpack

    with open(path, "r+b") as f:
        unpacker = msgpack.Unpacker(f, raw=False)
        header = unpacker.unpack()
        end = unpacker.tell()
        header["created"] = float(header["created"]) + i * 1e-6
        data = msgpack.packb(header, use_bin_type=True)
        if len(data) != end:
            raise SystemExit("cannot retitle: header size changed")
        f.seek(0)
        f.write(data)


if __name__ == "__main__":
    main()
