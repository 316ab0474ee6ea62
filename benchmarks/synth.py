"""Synthesize a realistic .krec log of any size with LogWriter, for benchmarks.

The mix follows what a notebook session records: per cell an execute_request, busy,
execute_input, a few stream chunks, sometimes display_data / execute_result / an error,
the execute_reply and idle; now and then completion, inspection and widget comm
traffic. JSON frames are formatted the way jupyter_client 8 and ipykernel 7 send them
(header keys in their order).
``python benchmarks/synth.py OUT.krec [N]`` writes one; other benchmarks import
``synthesize``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

from krec.recorder.log.header import log_header
from krec.recorder.log.writer import LogWriter

_CODE = [
    "import numpy as np\nx = np.arange({n})\nx.sum()",
    "for i in range({n}):\n    print(i, i * i)",
    "df = load_frame('data/part-{n}.csv')\ndf.describe()",
    "result = model.fit(X_train[:{n}], y_train[:{n}])\nprint(result.score)",
    "plt.plot(range({n}))\nplt.show()",
    "value = compute({n})\nvalue",
    "raise ValueError('bad value {n}')",
    "print('progress', {n})",
]
_WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epoch",
    "loss",
    "accuracy",
    "step",
    "batch",
    "value",
    "result",
    "total",
]


def synthesize(
    path: str, count: int, *, seed: int = 1, progress: Callable[[int], None] | None = None
) -> int:
    """Write a log of about ``count`` message records to ``path``; return the exact count."""
    rng = random.Random(seed)
    session_c = "8f2c3d4e-9a0b1c2d3e4f5a6b7c8d9e0f"
    session_k = "5d6e7f80-91a2b3c4d5e6f7a8b9c0d1e2"
    header = log_header(
        kernel={
            "name": "python3",
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
            "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        },
        connection={"transport": "tcp", "ip": "127.0.0.1", "signature_scheme": "hmac-sha256"},
        mode="kernel",
    )
    t0 = int(header["created"] * 1e9)
    t = t0
    counters = {True: 0, False: 0}  # per side, as each session numbers its messages
    written = 0
    pid = 4242

    def dumps(obj: object) -> bytes:
        return json.dumps(obj, ensure_ascii=False).encode()

    def hdr(msg_type: str, kernel: bool) -> tuple[bytes, str]:
        counters[kernel] += 1
        session = session_k if kernel else session_c
        msg_id = f"{session}_{pid if kernel else pid - 1}_{counters[kernel]}"
        secs = (t - t0) / 1e9
        date = f"2026-05-09T10:{int(secs // 60) % 60:02d}:{secs % 60:09.6f}Z"
        text = (
            f'{{"msg_id": "{msg_id}", "msg_type": "{msg_type}", "username": "ada", '
            f'"session": "{session}", "date": "{date}", "version": "5.4"}}'
        )
        return text.encode(), msg_id

    with LogWriter(path, header) as w:
        w.write_event("kernel_started", t=t, pid=pid, argv=["python"], kernel="python3")
        written += 1

        def send(
            ch: str, source: str, msg_type: str, parent: bytes, content: dict, meta: bytes = b"{}"
        ) -> tuple[bytes, str]:
            nonlocal t, written
            t += rng.randint(20_000, 400_000)
            h, mid = hdr(msg_type, source == "kernel")
            ids = [b"\x00k\xa7\x1e\x05"] if ch != "iopub" else [b"kernel.abc." + msg_type.encode()]
            w.write_message(t, ch, source, ids, h, parent, meta, dumps(content))
            written += 1
            if progress and written % 50_000 == 0:
                progress(written)
            return h, mid

        cell = 0
        while written < count:
            cell += 1
            kind = rng.random()
            if kind < 0.04:
                req, _ = send(
                    "shell", "client", "complete_request", b"{}", {"code": "x.", "cursor_pos": 2}
                )
                send("iopub", "kernel", "status", req, {"execution_state": "busy"})
                send(
                    "shell",
                    "kernel",
                    "complete_reply",
                    req,
                    {
                        "status": "ok",
                        "matches": ["x.sum", "x.size", "x.shape"],
                        "cursor_start": 2,
                        "cursor_end": 2,
                        "metadata": {},
                    },
                )
                send("iopub", "kernel", "status", req, {"execution_state": "idle"})
                continue
            if kind < 0.06:
                send(
                    "iopub",
                    "kernel",
                    "comm_msg",
                    b"{}",
                    {
                        "comm_id": "c0ffee00" * 4,
                        "data": {
                            "method": "update",
                            "state": {"value": rng.randint(0, 100)},
                            "buffer_paths": [],
                        },
                    },
                )
                continue
            code = rng.choice(_CODE).format(n=rng.randint(1, 10_000))
            req, _ = send(
                "shell",
                "client",
                "execute_request",
                b"{}",
                {
                    "code": code,
                    "silent": False,
                    "store_history": True,
                    "user_expressions": {},
                    "allow_stdin": True,
                    "stop_on_error": True,
                },
            )
            send("iopub", "kernel", "status", req, {"execution_state": "busy"})
            send("iopub", "kernel", "execute_input", req, {"code": code, "execution_count": cell})
            for _ in range(rng.choice((0, 1, 1, 2, 3, 5))):
                line = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 12)))
                send(
                    "iopub",
                    "kernel",
                    "stream",
                    req,
                    {"name": "stdout", "text": f"{line} {rng.random():.6f}\n"},
                )
            status = "ok"
            if code.startswith("raise"):
                status = "error"
                send(
                    "iopub",
                    "kernel",
                    "error",
                    req,
                    {
                        "ename": "ValueError",
                        "evalue": code[18:-2],
                        "traceback": ["\u001b[0;31mValueError\u001b[0m  Traceback", code],
                    },
                )
            elif rng.random() < 0.15:
                send(
                    "iopub",
                    "kernel",
                    "display_data",
                    req,
                    {
                        "data": {
                            "text/plain": "<Figure size 640x480 with 1 Axes>",
                            "image/png": "iVBORw0KGgo" + "A" * rng.randint(200, 1500),
                        },
                        "metadata": {},
                        "transient": {},
                    },
                )
            elif code.endswith(("sum()", "value", "describe()")):
                send(
                    "iopub",
                    "kernel",
                    "execute_result",
                    req,
                    {
                        "data": {"text/plain": str(rng.randint(0, 10**9))},
                        "metadata": {},
                        "execution_count": cell,
                    },
                )
            reply = {
                "status": status,
                "execution_count": cell,
                "user_expressions": {},
                "payload": [],
            }
            if status == "error":
                reply.update(ename="ValueError", evalue="bad value", traceback=[])
            send(
                "shell",
                "kernel",
                "execute_reply",
                req,
                reply,
                meta=b'{"started": "2026-05-09T10:00:00.000000Z", "dependencies_met": true, '
                b'"engine": "8c1d2e3f", "status": "' + status.encode() + b'"}',
            )
            send("iopub", "kernel", "status", req, {"execution_state": "idle"})
        w.write_event("recording_stopped", t=t + 1000, reason="stopped")
        written += 1
    return written


@contextlib.contextmanager
def big_log(path: str | None, count: int) -> Iterator[str]:
    """``path`` when given, else a log of ``count`` messages synthesized into a temporary
    directory for the duration (what every big-log benchmark starts with)."""
    if path:
        yield path
        return
    tmp = tempfile.mkdtemp(prefix="krec-bench-")
    try:
        out = os.path.join(tmp, "big.krec")
        start = time.perf_counter()
        n = synthesize(out, count)
        print(f"synthesized {n:,} records, {os.path.getsize(out) / 1e6:.0f} MB, "
              f"in {time.perf_counter() - start:.1f} s")  # fmt: skip
        yield out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("count", nargs="?", type=int, default=1_000_000)
    args = parser.parse_args()
    if os.path.exists(args.out):
        sys.exit(f"{args.out} exists")
    start = time.perf_counter()
    n = synthesize(args.out, args.count)
    size = os.path.getsize(args.out)
    print(f"{n} records, {size / 1e6:.0f} MB in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
