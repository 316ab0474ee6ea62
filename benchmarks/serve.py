"""krec serve: how fast a recording answers, and how faithfully `--speed realtime` keeps pace.

Records a session of N cells (benchmarks/replay.py's mix) through `krec record
--kernel python3`, then runs the same cells with jupyter_client against three
stand-ins, in paired rounds: a fresh ipykernel (direct), `krec serve --speed
fast` and `krec serve --speed realtime`. It prints the median execute round trip
of each, the ratio serve fast / direct, and realtime's pace: the summed round
trips of the served cells / the summed busy time (request to idle) of the same
cells in the recording (1.0 = the recorded pace; above 1 is the client's own
overhead on top of it).

    python benchmarks/serve.py [--cells 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jupyter_client import BlockingKernelClient
from jupyter_client.manager import start_new_kernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from replay import record  # noqa: E402  (a sibling script, not a package)

from krec.recorder.log.exchange import load_session  # noqa: E402


def run_cells(kc: BlockingKernelClient, codes: list[str]) -> tuple[list[float], float]:
    """Per-cell round trips (s) and the wall time of them all."""
    times = []
    start = time.perf_counter()
    for code in codes:
        t = time.perf_counter()
        kc.execute_interactive(code, timeout=60, output_hook=lambda m: None)
        times.append(time.perf_counter() - t)
    return times, time.perf_counter() - start


@contextmanager
def served(log: Path, tmp: Path, speed: str) -> Iterator[BlockingKernelClient]:
    cf, out = tmp / f"serve-{speed}.json", tmp / f"served-{speed}-{time.time_ns()}.krec"
    proc = subprocess.Popen(
        [sys.executable, "-m", "krec.recorder", "serve", str(log), "-f", str(cf), "-o", str(out),
         "--speed", speed], stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not cf.exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("krec serve did not start")
            time.sleep(0.05)
        kc = BlockingKernelClient(connection_file=str(cf))
        kc.load_connection_file()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        try:
            yield kc
        finally:
            kc.stop_channels()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def recorded_busy(log: Path) -> float:
    """The cells' summed request-to-idle time in the recording (s)."""
    cells = [ex for ex in load_session(str(log)).exchanges if ex.msg_type == "execute_request"]
    return sum(ex.busy_time for ex in cells) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        log = record(args.cells, tmp)
        session = load_session(str(log))
        codes = [ex.code or "" for ex in session.exchanges if ex.msg_type == "execute_request"]
        original = recorded_busy(log)
        direct: list[float] = []
        fast: list[float] = []
        paces: list[float] = []
        ratios: list[float] = []
        for _ in range(args.repeat):
            km, kc = start_new_kernel(kernel_name="python3")
            try:
                d, _ = run_cells(kc, codes)
            finally:
                kc.stop_channels()
                km.shutdown_kernel(now=True)
            with served(log, tmp, "fast") as kc:
                f, _ = run_cells(kc, codes)
            with served(log, tmp, "realtime") as kc:
                r, _ = run_cells(kc, codes)
            direct += d
            fast += f
            ratios.append(statistics.median(f) / statistics.median(d))
            paces.append(sum(r) / original)
    print(f"cells: {len(codes)} x {args.repeat} rounds")
    print(f"median execute round trip: direct {statistics.median(direct) * 1e3:.2f} ms, "
          f"serve fast {statistics.median(fast) * 1e3:.2f} ms")  # fmt: skip
    print(f"serve fast / direct (median of per-round ratios): {statistics.median(ratios):.2f}")
    print(f"serve realtime pace (round trips / recorded busy): {statistics.median(paces):.2f}")


if __name__ == "__main__":
    main()
