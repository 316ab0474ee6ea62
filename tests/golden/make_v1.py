"""Write tests/golden/v1.krec: a fixed log in format version 1 that every krec must read.

Run once (``python tests/golden/make_v1.py``) and commit the file; never regenerate
it with a newer krec. It packs the msgpack objects itself, exactly as docs/format.md
version 1 describes them, so it does not depend on what LogWriter writes today.
"""

from __future__ import annotations

import json
import os
import sys

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = 1_700_000_000_000_000_000


def frame(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def header(msg_id: str, msg_type: str, session: str, **extra: str) -> dict[str, str]:
    h = {
        "msg_id": msg_id,
        "msg_type": msg_type,
        "username": "ada",
        "session": session,
        "date": "2023-11-14T22:13:20.000000Z",
        "version": "5.4",
    }
    h.update(extra)
    return h


def message(
    t_ms: int,
    ch: str,
    source: str,
    hdr: dict,
    parent: dict,
    content: dict,
    *,
    ids: list[bytes] | None = None,
    metadata: dict | None = None,
    buffers: list[bytes] | None = None,
) -> dict:
    return {
        "t": T0 + t_ms * 1_000_000,
        "ch": ch,
        "from": source,
        "ids": ids if ids is not None else ([] if ch == "iopub" else [b"\x00\x80\x00\x00\x29"]),
        "header": frame(hdr),
        "parent": frame(parent),
        "metadata": frame(metadata or {}),
        "content": frame(content),
        "buffers": buffers or [],
    }


def records() -> list[dict]:
    c, k = "c0ffee00-1111", "beef0000-2222"
    req = header(f"{c}_1_1", "execute_request", c)
    ask = header(f"{k}_2_4", "input_request", k)
    comm = header(f"{k}_2_7", "comm_msg", k)
    return [
        {
            "t": T0,
            "event": "kernel_started",
            "pid": 4343,
            "argv": ["python", "-m", "ipykernel_launcher"],
            "kernel": "python3",
        },
        {"t": T0 + 1_000_000, "event": "client_subscribed", "topic": ""},
        message(
            2,
            "iopub",
            "krec",
            header("a1b2c3d4-e5f6", "iopub_welcome", "krec"),
            {},
            {"subscription": ""},
        ),
        message(
            3,
            "shell",
            "client",
            req,
            {},
            {
                "code": "print('héllo')\nname = input()",
                "silent": False,
                "store_history": True,
                "allow_stdin": True,
            },
        ),
        message(
            4,
            "iopub",
            "kernel",
            header(f"{k}_2_1", "status", k),
            req,
            {"execution_state": "busy"},
            ids=[b"kernel.x.status"],
        ),
        message(
            5,
            "iopub",
            "kernel",
            header(f"{k}_2_2", "stream", k),
            req,
            {"name": "stdout", "text": "héllo\n"},
        ),
        message(6, "stdin", "kernel", ask, req, {"prompt": "", "password": False}),
        message(9, "stdin", "client", header(f"{c}_1_2", "input_reply", c), ask, {"value": "Ada"}),
        message(
            10,
            "iopub",
            "kernel",
            header(f"{k}_2_5", "error", k),
            req,
            {
                "ename": "NameError",
                "evalue": "name 'x' is not defined",
                "traceback": ["\u001b[31mNameError\u001b[0m"],
            },
        ),
        message(
            11,
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
            metadata={"status": "error"},
        ),
        message(
            12,
            "iopub",
            "kernel",
            comm,
            {},
            {"comm_id": "w1", "data": {"buffer_paths": [["value"]]}},
            buffers=[b"\x00\x01\x02\xff"],
        ),
        message(
            13,
            "control",
            "client",
            header(f"{c}_1_3", "interrupt_request", c, subshell_id="sub-1"),
            {},
            {},
        ),
        {"t": T0 + 14_000_000, "event": "interrupt", "mode": "message"},
        message(
            15, "iopub", "kernel", header(f"{k}_2_8", "status", k), req, {"execution_state": "idle"}
        ),
        {"t": T0 + 20_000_000, "event": "recording_stopped", "reason": "SIGINT"},
    ]


def main() -> None:
    path = os.path.join(HERE, "v1.krec")
    if os.path.exists(path) and "--force" not in sys.argv:
        sys.exit(
            f"{path} exists: a golden file is never regenerated (use --force only if it is "
            "not committed yet)"
        )
    pack = msgpack.Packer(use_bin_type=True).pack
    head = {
        "format": "krec",
        "version": 1,
        "created": T0 / 1e9,
        "krec_version": "0.1.0",
        "kernel": {
            "name": "python3",
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
            "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        },
        "connection": {
            "transport": "tcp",
            "ip": "127.0.0.1",
            "signature_scheme": "hmac-sha256",
            "encryption": None,
        },
        "host": "golden",
        "pid": 4242,
        "mode": "kernel",
    }
    with open(path, "wb") as f:
        f.write(pack(head))
        for record in records():
            f.write(pack(record))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
