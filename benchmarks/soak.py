"""Soak: a sustained iopub stream plus shell requests through krec for a while.

A kernel behind `krec record --kernel python3` prints numbered lines from a
background thread at a steady rate for DURATION seconds while the client keeps
sending small execute requests. At the end the script checks that every
numbered line reached the client and the log (no gaps), and prints krec's RSS
over time (flat after warm-up), the log write rate, and latency percentiles
(kernel print to client receipt; execute round trip).

    python benchmarks/soak.py                       # 60 s at 1000 lines/s
    python benchmarks/soak.py --duration 600        # the 10-minute run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from recording import attach, start_recording, stop_recording

from krec.recorder.log.reader import LogReader

STREAM = """
import threading, time, sys
def _soak(n, rate):
    start = time.time()
    for i in range(n):
        delay = start + i / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        print(f"seq {{i}} {{time.time():.6f}}", flush=True)
    print("soak done", flush=True)
_t = threading.Thread(target=_soak, args=({n}, {rate}))
_t.start()
"""


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="printed lines per second")
    args = parser.parse_args()
    n = int(args.duration * args.rate)

    tmp = Path(tempfile.mkdtemp(prefix="krec-soak-"))
    log, cf = tmp / "soak.krec", tmp / "cf.json"
    krec = start_recording(log, cf)
    rss: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        t0 = time.monotonic()
        while not stop.wait(1.0):
            rss.append((time.monotonic() - t0, rss_kb(krec.pid)))

    try:
        kc = attach(cf)
        threading.Thread(target=sample, daemon=True).start()
        kc.execute(STREAM.format(n=n, rate=args.rate))
        seen: set[int] = set()
        latencies: list[float] = []
        round_trips: list[float] = []
        done = False
        next_request = time.monotonic()
        pending: dict[str, float] = {}
        t_start = time.monotonic()
        while not done:
            if time.monotonic() >= next_request:
                pending[kc.execute("pass", store_history=False)] = time.perf_counter()
                next_request = time.monotonic() + 0.1
            while kc.shell_channel.msg_ready():
                reply = kc.get_shell_msg()
                sent = pending.pop(reply["parent_header"].get("msg_id"), None)
                if sent is not None:
                    round_trips.append(time.perf_counter() - sent)
            try:
                msg = kc.get_iopub_msg(timeout=0.05)
            except Exception:
                continue
            if msg["msg_type"] != "stream":
                continue
            now = time.time()
            for line in msg["content"]["text"].splitlines():
                if line == "soak done":
                    done = True
                elif line.startswith("seq "):
                    _, i, stamp = line.split()
                    seen.add(int(i))
                    latencies.append(now - float(stamp))
            if time.monotonic() - t_start > args.duration * 3 + 60:
                break
        elapsed = time.monotonic() - t_start
        kc.stop_channels()
    finally:
        stop.set()
        stop_recording(krec)

    with LogReader(log) as reader:
        logged: set[int] = set()
        records = len(reader)
        for rec in reader:
            if rec.msg_type == "stream":
                for line in rec.content.get("text", "").splitlines():
                    if line.startswith("seq "):
                        logged.add(int(line.split()[1]))
    size = log.stat().st_size
    lost_client = n - len(seen)
    lost_log = n - len(logged)
    print(
        f"duration {elapsed:.1f} s, {n} numbered lines at {args.rate:.0f}/s, "
        f"{len(round_trips)} execute requests in parallel"
    )
    print(f"lost kernel -> client: {lost_client}   lost kernel -> log: {lost_log}   (target 0)")
    print(
        f"log: {records} records, {size / 1e6:.1f} MB, "
        f"{records / elapsed:.0f} records/s, {size / elapsed / 1e6:.2f} MB/s"
    )
    print(
        f"print -> client latency ms: p50 {pct(latencies, 50) * 1e3:.1f}  "
        f"p95 {pct(latencies, 95) * 1e3:.1f}  p99 {pct(latencies, 99) * 1e3:.1f}  "
        f"max {max(latencies, default=0) * 1e3:.1f}"
    )
    print(
        f"execute round trip ms:     p50 {pct(round_trips, 50) * 1e3:.1f}  "
        f"p95 {pct(round_trips, 95) * 1e3:.1f}  p99 {pct(round_trips, 99) * 1e3:.1f}"
    )
    if rss:
        warm = [kb for t, kb in rss if t > min(10.0, args.duration / 3)]
        print(
            f"krec RSS MB: start {rss[0][1] / 1024:.1f}, after warm-up min "
            f"{min(warm, default=0) / 1024:.1f} median {statistics.median(warm or [0]) / 1024:.1f}"
            f" max {max(warm, default=0) / 1024:.1f}, end {rss[-1][1] / 1024:.1f}"
        )
    if lost_client or lost_log:
        sys.exit(1)


if __name__ == "__main__":
    main()
