"""Replay determinism under load: the same verdict in N consecutive replays of each log.

Replays every sample in sample_sessions/ and every test notebook in tests/notebooks/
(executed once with nbclient under `krec record --`) N times each (default 20)
while busy-loop processes keep every core busy, and prints, per log, how many
replays gave each verdict (no divergence, or the set of requests that diverged).
A log passes when all N replays agree.

    python benchmarks/replay_determinism.py [--runs 20] [--load 2] [--only NAME...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from krec.recorder.replay.replayer import replay

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "tests" / "notebooks"
SAMPLE_PASSWORD = "swordfish"  # make_samples.PASSWORD: stdin.krec's redacted answer


def _burn() -> None:
    while True:
        pass


def record_notebooks(tmp: Path) -> list[Path]:
    """Execute every test notebook once under `krec record --`; its logs, one per notebook."""
    import shutil

    paths = []
    for sub in ("nbclient", "krec"):
        shutil.copytree(NOTEBOOKS / sub, tmp / sub)
        paths += sorted((tmp / sub).glob("*.ipynb"))
    paths = [p for p in paths if p.stem != "Sleep1s"]  # prints the time: never the same
    logs = tmp / "logs"
    for path in paths:  # one process per notebook: each runs in its own folder
        subprocess.run(
            [sys.executable, "-m", "krec.recorder", "record", "-o", str(logs), "--"]
            + [sys.executable, str(NOTEBOOKS / "run_notebooks.py"), str(tmp / "out"), str(path)],
            cwd=path.parent,
            check=True,
            timeout=600,
            stdout=subprocess.DEVNULL,
        )
    return sorted(logs.glob("*.krec"))


def verdict(log: Path, out: Path) -> tuple[str, list[str]]:
    """The replay's verdict, and its divergences as text."""
    password = SAMPLE_PASSWORD if log.name == "stdin.krec" else None
    report = replay(str(log), output=str(out), password=password).report
    bad = sorted({d.request for d in report.divergences})
    said = [f"{d.request} {d.msg_type} {d.field}: {d.diff or d.actual}" for d in report.divergences]
    return ("same" if not bad else "diverged " + ",".join(map(str, bad))), said


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--load", type=int, default=os.cpu_count() or 2, help="busy processes")
    parser.add_argument("--only", nargs="*", help="log stems to replay (default: all)")
    parser.add_argument(
        "--explain", action="store_true", help="print the divergences of a verdict seen once"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="krec-bench-determinism-"))
    logs = sorted((ROOT / "sample_sessions").glob("*.krec")) + record_notebooks(tmp)
    if args.only:
        logs = [p for p in logs if p.stem in args.only]
    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(args.load)]
    for b in burners:
        b.start()
    print(f"{len(logs)} logs x {args.runs} replays, {args.load} busy processes")
    stable = 0
    started = time.monotonic()
    try:
        for log in logs:
            counts: Counter[str] = Counter()
            for i in range(args.runs):
                said, details = verdict(log, tmp / "replays" / f"{log.stem}-{i}.krec")
                if args.explain and said not in counts:
                    for line in details:
                        print(f"    {log.name} (replay {i + 1}): {line}", flush=True)
                counts[said] += 1
            ok = len(counts) == 1
            stable += ok
            shown = "; ".join(f"{v} x{n}" for v, n in counts.most_common())
            print(f"{'ok  ' if ok else 'FLAKY'} {log.name:<40} {shown}", flush=True)
    finally:
        for b in burners:
            b.kill()
    print(
        f"{stable} of {len(logs)} logs gave one verdict in {args.runs} replays "
        f"({time.monotonic() - started:.0f} s)"
    )


if __name__ == "__main__":
    main()
