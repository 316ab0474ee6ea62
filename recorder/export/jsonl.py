"""A log as JSON lines of decoded records, and the redaction every export can apply.

Each line is ``Record.to_json`` (the objects of ``krec show --json``). ``redactor``
turns ``--redact`` patterns into a function that replaces every match in the
strings of a JSON value with ``REDACTED``, so a log can be shared without its
secrets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from krec.recorder.errors import KrecError

if TYPE_CHECKING:
    from krec.recorder.filter import Filter
    from krec.recorder.log.reader import LogReader
    from krec.recorder.log.record import Record

REDACTED = "[REDACTED]"

#: told (records done, records in all) as an export goes on
ProgressCallback = Callable[[int, int], None]


def redactor(patterns: list[str]) -> Callable[[Any], Any]:
    """A function replacing every match of ``patterns`` in the strings of a JSON value."""
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as e:
            raise KrecError(f"--redact {pattern!r}: bad pattern: {e}") from None

    def redact(value: Any) -> Any:
        if isinstance(value, str):
            for p in compiled:
                value = p.sub(REDACTED, value)
            return value
        if isinstance(value, dict):
            return {k: redact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [redact(v) for v in value]
        return value

    return redact if compiled else (lambda value: value)


def matching_records(
    reader: LogReader, flt: Filter, progress: ProgressCallback | None = None
) -> Iterator[Record]:
    """The indexed records of ``reader`` that ``flt`` matches, in order."""
    total = len(reader)
    if flt.matches_all:
        for record in reader.records():
            if progress is not None and record.index % 4096 == 0:
                progress(record.index, total)
            yield record
        return
    for i in flt.scan(reader, progress=progress):
        yield reader[i]


def jsonl_lines(
    reader: LogReader,
    flt: Filter,
    redact: Callable[[Any], Any] = lambda value: value,
    progress: ProgressCallback | None = None,
) -> Iterator[str]:
    """One JSON line (with its newline) per matching record, redacted."""
    for record in matching_records(reader, flt, progress):
        data = redact(record.to_json(reader.start_ns))
        yield json.dumps(data, ensure_ascii=False) + "\n"
