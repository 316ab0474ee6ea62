"""Kept for old imports: the .krec log now lives in krec.recorder.log.

``krec.recorder.log.writer`` (LogWriter), ``.reader`` (LogReader), ``.record``
(Record, decode_record, loads_json) and ``.header`` (log_header, the header map
``make_header`` used to build); the JSON peeker ``peek_field`` is in
krec.recorder.wire. New code imports from there.
"""

from __future__ import annotations

from krec.recorder.log.header import log_header as make_header
from krec.recorder.log.header import recording_user
from krec.recorder.log.reader import LogReader
from krec.recorder.log.record import (
    CHANNELS,
    SOURCES,
    UNREADABLE,
    Record,
    decode_record,
    loads_json,
    orjson_agrees,
)
from krec.recorder.log.writer import (
    FSYNC_INTERVAL_NS,
    LogWriteError,
    LogWriter,
    being_written,
    complete_length,
)
from krec.recorder.wire import peek_field

__all__ = [
    "CHANNELS",
    "FSYNC_INTERVAL_NS",
    "SOURCES",
    "UNREADABLE",
    "LogReader",
    "LogWriteError",
    "LogWriter",
    "Record",
    "being_written",
    "complete_length",
    "decode_record",
    "loads_json",
    "make_header",
    "orjson_agrees",
    "peek_field",
    "recording_user",
]
