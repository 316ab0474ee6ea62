"""Write tests/golden/v2.krec: a fixed log in format version 2 that every krec must read.

Run once (``python tests/golden/make_v2.py``) and commit the file; never regenerate
it with a newer krec. Like make_v1.py it packs the msgpack objects itself, and it
computes the hash chain itself, exactly as docs/format.md and docs/audit.md describe
version 2, so the file checks LogWriter and `krec verify` against the spec rather
than against each other. It is an audit log (outputs dropped, their sizes kept),
sealed every 4 records (the header says so) and closed with a final seal.
"""

from __future__ import annotations

import hashlib
import os
import sys

import msgpack
from make_v1 import T0, header, message

HERE = os.path.dirname(os.path.abspath(__file__))
EVERY = 4


def records() -> list[dict]:
    c, k = "c0ffee00-1111", "beef0000-2222"
    req = header(f"{c}_1_1", "execute_request", c)
    out = message(5, "iopub", "kernel", header(f"{k}_2_2", "stream", k), req,
                  {"name": "stdout", "text": ""})  # fmt: skip
    out["dropped"] = {"text": 6}
    shown = message(6, "iopub", "kernel", header(f"{k}_2_3", "display_data", k), req,
                    {"data": {"text/plain": "", "image/png": ""}, "metadata": {},
                     "transient": {}})  # fmt: skip
    shown["dropped"] = {"data": {"text/plain": 9, "image/png": 4000}, "metadata": 2,
                        "buffers": [16]}  # fmt: skip
    return [
        {"t": T0, "event": "kernel_started", "pid": 4343, "kernel": "python3"},
        {"t": T0 + 1_000_000, "event": "client_identity", "user": "ada", "kernel_id": "k-1"},
        message(
            3,
            "shell",
            "client",
            req,
            {},
            {"code": "print('héllo')", "silent": False, "store_history": True, "allow_stdin": True},
        ),  # fmt: skip
        message(
            4, "iopub", "kernel", header(f"{k}_2_1", "status", k), req, {"execution_state": "busy"}
        ),  # fmt: skip
        out,
        shown,
        message(
            7,
            "shell",
            "kernel",
            header(f"{k}_2_6", "execute_reply", k),
            req,
            {
                "status": "error",
                "execution_count": 1,
                "ename": "NameError",
                "evalue": "name 'x' is not defined",
                "traceback": [],
            },
        ),  # fmt: skip
        message(
            8, "iopub", "kernel", header(f"{k}_2_8", "status", k), req, {"execution_state": "idle"}
        ),  # fmt: skip
        {"t": T0 + 20_000_000, "event": "recording_stopped", "reason": "SIGINT"},
    ]


def main() -> None:
    path = os.path.join(HERE, "v2.krec")
    if os.path.exists(path) and "--force" not in sys.argv:
        sys.exit(f"{path} exists: a golden file is never regenerated")
    pack = msgpack.Packer(use_bin_type=True).pack
    head = {
        "format": "krec",
        "version": 2,
        "created": T0 / 1e9,
        "krec_version": "0.2.0",
        "kernel": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                   "language": "python", "argv": ["python", "-m", "ipykernel_launcher"]},
        "connection": {"transport": "tcp", "ip": "127.0.0.1",
                       "signature_scheme": "hmac-sha256", "encryption": None},
        "host": "golden",
        "pid": 4242,
        "user": "ada",
        "mode": "kernel",
        "audit": True,
        "seal": {"alg": "sha256", "records": EVERY, "seconds": 5.0, "fp_bytes": 4},
    }  # fmt: skip
    data = pack(head)
    running = hashlib.sha256(hashlib.sha256(data).digest())
    out = [data]
    fps: list[bytes] = []
    n = seq = 0

    def seal(t: int, final: bool) -> None:
        nonlocal n, seq, fps
        record = {"t": t, "event": "seal", "seq": seq, "n": n, "fp": b"".join(fps),
                  "digest": running.copy().digest()}  # fmt: skip
        if final:
            record["final"] = True
        packed = pack(record)
        running.update(hashlib.sha256(packed).digest())
        out.append(packed)
        fps, n, seq = [], n + 1, seq + 1

    for record in records():
        packed = pack(record)
        digest = hashlib.sha256(packed).digest()
        running.update(digest)
        fps.append(digest[:4])
        out.append(packed)
        n += 1
        if len(fps) == EVERY:
            seal(record["t"], False)
    seal(T0 + 21_000_000, True)
    with open(path, "wb") as f:
        f.write(b"".join(out))


if __name__ == "__main__":
    main()
