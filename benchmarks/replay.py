"""Replay speed: replay wall time / the original session's busy time (target <= 1.1).

Records a session of N cells (default 200: small computations, prints, short
sleeps, a display, an error) through `krec record --kernel python3`, then
replays it and prints the ratio of the replay's wall time (first request sent to
last request complete) to the original busy time (the sum of request-to-idle
durations). Kernel start-up is not part of either.

    python benchmarks/replay.py [--cells 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from recording import attach, start_recording, stop_recording

from krec.recorder.replay.replayer import replay

CELLS = [
    "x = sum(i * i for i in range(20000))",
    "print(x % 97)",
    "import time; time.sleep(0.01)",
    "[n ** 2 for n in range(10)]",
    "from IPython.display import display, HTML; display(HTML('<b>%d</b>' % x))",
    "for i in range(5): print(i)",
]


def record(n: int, tmp: Path) -> Path:
    log, cf = tmp / "session.krec", tmp / "cf.json"
    proc = start_recording(log, cf)
    try:
        kc = attach(cf)
        for i in range(n):
            code = CELLS[i % len(CELLS)] if i % 50 != 49 else "1 / 0"
            kc.execute_interactive(code, timeout=60, output_hook=lambda m: None)
            if code == "1 / 0":
                time.sleep(0.3)  # as a person would before the next cell
        kc.stop_channels()
    finally:
        stop_recording(proc)
    return log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="krec-bench-replay-"))
    log = record(args.cells, tmp)
    ratios = []
    for i in range(args.repeat):
        out = tmp / f"replay{i}.krec"
        result = replay(str(log), output=str(out))
        ratios.append(result.ratio)
        state = "diverged" if result.report.diverged else "no divergence"
        print(
            f"replay {i + 1}: wall {result.wall_time:.3f} s, original busy "
            f"{result.busy_time:.3f} s, ratio {result.ratio:.3f} ({state})"
        )
        os.unlink(out)
    print(
        f"\nreplay wall time / original busy time (median of {args.repeat}): "
        f"{statistics.median(ratios):.3f}   target <= 1.1"
    )


if __name__ == "__main__":
    main()
