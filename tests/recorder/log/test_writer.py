"""LogWriter: whatever it writes, LogReader reads back identical."""

from __future__ import annotations

import json
import os
from pathlib import Path

from factories import log_header
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krec.recorder.log.reader import LogReader
from krec.recorder.log.writer import LogWriter

GOLDEN = Path(__file__).resolve().parent.parent.parent / "golden"
_SLOW_FIXTURE_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


# -- round trips ----------------------------------------------------------------

_json_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_frames = st.dictionaries(st.sampled_from(["a", "msg_id", "text", "é"]), _json_text, max_size=3)
_messages = st.fixed_dictionaries(
    {
        "t": st.integers(0, 2**63 - 1),
        "ch": st.sampled_from(["shell", "control", "stdin", "iopub"]),
        "source": st.sampled_from(["client", "kernel", "krec"]),
        "ids": st.lists(st.binary(max_size=8), max_size=2),
        "header": _frames.map(lambda d: json.dumps(d).encode()),
        "parent": _frames.map(lambda d: json.dumps(d, ensure_ascii=False).encode()),
        "metadata": st.binary(max_size=20),  # frames are stored as bytes, JSON or not
        "content": _frames.map(lambda d: json.dumps(d, indent=1).encode()),
        "buffers": st.lists(st.binary(max_size=30), max_size=2),
    }
)
_events = st.fixed_dictionaries(
    {
        "event": st.text(min_size=1, max_size=12),
        "t": st.integers(0, 2**63 - 1),
        "fields": st.dictionaries(
            st.text(max_size=6).filter(lambda k: k not in ("t", "event")),
            st.one_of(st.integers(-(2**63), 2**64 - 1), _json_text, st.none(), st.binary()),
            max_size=3,
        ),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=_SLOW_FIXTURE_OK)
@given(records=st.lists(st.one_of(_messages, _events), max_size=12))
def test_records_written_by_logwriter_read_back_identical(tmp_path, records):
    path = tmp_path / f"{os.urandom(6).hex()}.krec"
    with LogWriter(path, log_header()) as writer:
        for r in records:
            if "event" in r:
                writer.write_event(r["event"], t=r["t"], **r["fields"])
            else:
                writer.write_message(**r)
    with LogReader(path) as reader:
        assert reader.warnings == []
        assert len(reader) == len(records) + 1  # and the final seal
        assert reader[-1].event == "seal" and reader[-1].raw["final"] is True
        streamed = list(reader)
        for i, r in enumerate(records):
            for record in (reader[i], streamed[i]):
                assert record.index == i
                assert record.t == r["t"]
                if "event" in r:
                    assert record.is_event and record.event == r["event"]
                    assert record.fields == r["fields"]
                    continue
                assert (record.ch, record.source) == (r["ch"], r["source"])
                assert record.ids == r["ids"] and record.buffers == r["buffers"]
                for name in ("header", "parent", "metadata", "content"):
                    assert record.frame(name) == r[name]
                parsed = json.loads(r["header"])
                assert record.msg_id == (parsed.get("msg_id") or "")
                assert record.header == parsed
        assert [r.index for r in reader[1:4]] == list(range(1, min(4, len(records) + 1)))
