"""export/jsonl.py: the lines of `krec export --to jsonl`, filtered and redacted."""

from __future__ import annotations

import json

import pytest
from factories import LogBuilder, stream

from krec.recorder.errors import KrecError
from krec.recorder.export.jsonl import REDACTED, jsonl_lines, redactor
from krec.recorder.filter import compile_filter
from krec.recorder.log.reader import LogReader


def test_redactor_replaces_every_match_in_nested_strings() -> None:
    redact = redactor(["sk-[a-z]+", "Ada"])
    value = {"a": "key sk-abc and Ada", "b": ["Ada", 3, None], "c": {"d": "sk-x"}}
    assert redact(value) == {
        "a": f"key {REDACTED} and {REDACTED}",
        "b": [REDACTED, 3, None],
        "c": {"d": REDACTED},
    }
    assert redactor([])(value) is value


def test_a_bad_pattern_is_a_krec_error() -> None:
    with pytest.raises(KrecError, match="bad pattern"):
        redactor(["("])


def test_lines_are_the_records_as_json(tmp_path) -> None:
    with LogBuilder(tmp_path / "s.krec") as log:
        log.execute("print('secret')", [stream("secret\n")])
    seen: list[tuple[int, int]] = []
    with LogReader(log.path) as reader:
        every = [json.loads(line) for line in jsonl_lines(reader, compile_filter(""))]
        assert every == [r.to_json(reader.start_ns) for r in reader.records()]
        streams = list(
            jsonl_lines(
                reader,
                compile_filter("type:stream"),
                redactor(["secret"]),
                progress=lambda done, total: seen.append((done, total)),
            )
        )
    (line,) = streams
    assert line.endswith("\n") and "secret" not in line and REDACTED in line
