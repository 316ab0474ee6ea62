"""Rules never crash on odd but well-formed records; the fast schemas agree with jsonschema."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krec.recorder.check import run_checks
from krec.recorder.check.protocol import KNOWN
from krec.recorder.check.schemas import check_content, content_schema, known_types
from krec.recorder.log.header import log_header
from krec.recorder.log.reader import LogReader
from krec.recorder.log.writer import LogWriter

FIELDS = [
    "msg_id", "msg_type", "session", "username", "date", "version", "subshell_id", "status",
    "execution_state", "execution_count", "code", "comm_id", "target_name", "data", "transient",
    "display_id", "ename", "evalue", "traceback", "name", "text", "allow_stdin", "silent",
    "store_history", "password", "prompt", "value", "restart", "metadata", "matches",
]  # fmt: skip
TYPES = sorted(KNOWN) + ["custom_request", "custom_reply", "", "x"]
EVENTS = [
    "restart", "kernel_started", "interrupt", "heartbeat_lost", "kernel_died", "kernel_exited",
    "bad_message", "records_dropped", "recording_stopped", "protocol_version", "mystery",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 5)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "ok", "error", "aborted", "busy", "idle", "starting", "c1", "d1"])
    | st.text(max_size=6)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=5,
)
objects = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), values, max_size=6)


@st.composite
def headers(draw: Any, ids: list[str]) -> dict[str, Any]:
    h = draw(objects)
    if draw(st.booleans()):
        h["msg_type"] = draw(st.sampled_from(TYPES))
        h["msg_id"] = draw(st.sampled_from(ids))
        h["version"] = draw(st.sampled_from(["5.0", "5.1", "5.3", "5.5", "4.1", "x", ""]))
    return h


@st.composite
def records(draw: Any) -> list[dict[str, Any]]:
    ids = ["a", "b", "c", "d"]
    out = []
    for _ in range(draw(st.integers(0, 20))):
        if draw(st.integers(0, 5)) == 0:
            out.append({"event": draw(st.sampled_from(EVENTS)), **draw(objects)})
            continue
        frames: dict[str, bytes] = {}
        for name in ("header", "parent", "metadata", "content"):
            kind = draw(st.integers(0, 9))
            if kind == 0:
                frames[name] = draw(st.binary(max_size=8))  # not JSON at all
            elif kind == 1:
                frames[name] = json.dumps(draw(values)).encode()  # JSON, maybe not an object
            elif name in ("header", "parent"):
                frames[name] = json.dumps(draw(headers(ids))).encode()
            else:
                frames[name] = json.dumps(draw(objects)).encode()
        out.append(
            {
                "ch": draw(st.sampled_from(["shell", "control", "stdin", "iopub", "hb", ""])),
                "from": draw(st.sampled_from(["client", "kernel", "krec", "?"])),
                "ids": draw(st.lists(st.sampled_from([b"c1", b"c2", b""]), max_size=2)),
                **frames,
            }
        )
    return out


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records(), st.sampled_from(["kernel", "existing"]))
def test_rules_never_crash_on_odd_records(recs: list[dict[str, Any]], mode: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "odd.krec"
        with LogWriter(path, log_header({"name": "odd"}, None, mode=mode)) as w:
            for n, rec in enumerate(recs):
                t = 1_700_000_000_000_000_000 + n * 1_000_000
                if "event" in rec:
                    fields = {k: v for k, v in rec.items() if k not in ("event", "t")}
                    w.write_event(rec["event"], t=t, **fields)
                else:
                    w.write_message(
                        t, rec["ch"], rec["from"], rec["ids"], rec["header"], rec["parent"],
                        rec["metadata"], rec["content"],
                    )  # fmt: skip
        with LogReader(path) as reader:
            found = run_checks(reader)
            assert all(0 <= f.index < len(reader) for f in found)
            assert all(f.severity in ("error", "warning") and f.text for f in found)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(known_types())), objects, st.booleans())
def test_compiled_schemas_agree_with_jsonschema(msg_type: str, content: dict, strict: bool) -> None:
    schema = content_schema(msg_type, strict)
    assert schema is not None
    expected = jsonschema.Draft4Validator(schema).is_valid(content)
    assert (check_content(msg_type, content, strict) is None) == expected


def test_msgspec_v5_is_read_as_jupyter_kernel_test_has_it() -> None:
    from jupyter_kernel_test import msgspec_v5

    from krec.recorder.check.schemas import _msgspec_v5_fragments

    assert _msgspec_v5_fragments() == msgspec_v5.schema_fragments
