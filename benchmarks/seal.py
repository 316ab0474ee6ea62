"""Cost per record of the hash chain and of audit redaction, on the capture thread's path.

Writes the same records with LogWriter to a version-1 log (no chain), a sealed
version-2 log, a keyed one, and a sealed audit log, in one run, alternating rounds,
and prints the median microseconds per record of each and the difference to no chain.

    python benchmarks/seal.py                  # 5 rounds of 50,000 records per kind
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

from krec.recorder.log.header import log_header
from krec.recorder.log.writer import LogWriter

KEY = b"k" * 32


def records(n: int, size: int) -> list[tuple]:
    parent = json.dumps({"msg_id": "c1a2b3c4_1_1", "msg_type": "execute_request"}).encode()
    out = []
    for i in range(n):
        header = json.dumps({"msg_id": f"e7f8a9b0_2_{i}", "msg_type": "stream", "username": "u",
                             "session": "e7f8a9b0", "date": "2026-12-07T05:00:00.000000Z",
                             "version": "5.4"}).encode()  # fmt: skip
        content = json.dumps({"name": "stdout", "text": f"{i} " + "x" * size + "\n"}).encode()
        out.append((time.time_ns(), "iopub", "kernel", [], header, parent, b"{}", content, []))
    return out


def run(kind: str, recs: list[tuple], folder: str) -> float:
    header = log_header(kernel={"name": "python3"}, audit=kind == "audit")
    key = KEY if kind == "keyed" else None
    if kind == "none":
        header["version"] = 1  # a version-1 header: LogWriter keeps no chain
    path = os.path.join(folder, f"{kind}-{time.monotonic_ns()}.krec")
    w = LogWriter(path, header, seal_key=key)
    start = time.perf_counter()
    for k in range(0, len(recs), 100):  # the capture thread's batches
        for r in recs[k : k + 100]:
            w.write_message(*r)
        w.write_through()
    w.close()
    elapsed = time.perf_counter() - start
    os.unlink(path)
    return elapsed / len(recs) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=60, help="stream text bytes per record")
    args = parser.parse_args()
    recs = records(args.records, args.size)
    kinds = ("none", "sealed", "keyed", "audit")
    found: dict[str, list[float]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            for kind in kinds:
                found[kind].append(run(kind, recs, folder))
    base = statistics.median(found["none"])
    print(
        f"{args.records} stream records of ~{len(recs[0][7])} content bytes, {args.rounds} rounds"
    )
    for kind in kinds:
        med = statistics.median(found[kind])
        print(f"{kind:>7}: {med:6.2f} us/record   (+{med - base:5.2f} us over no chain)")


if __name__ == "__main__":
    main()
