"""describe(): the readable parts of a record (code, text, tracebacks, images) and its JSON."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

from krec.recorder.log.reader import LogReader
from krec.recorder.log.record import Record
from krec.viewer.detail import describe, describe_image, image_size


def png_bytes(width: int, height: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + struct.pack(">II", width, height) + b"\x08\x06"


def first(reader: LogReader, msg_type: str) -> Record:
    return next(r for r in reader if r.msg_type == msg_type)


def test_error_shows_its_traceback_with_ansi(sample_log: Path) -> None:
    with LogReader(sample_log) as reader:
        detail = describe(first(reader, "error"), reader.start_ns)
    (text,) = detail.texts
    assert text.kind == "ansi"
    assert text.label == "ZeroDivisionError: division by zero"
    assert "\x1b[0;31mZeroDivisionError" in text.text
    assert [name for name, _ in detail.sections] == [
        "header",
        "parent_header",
        "metadata",
        "content",
    ]
    assert detail.title.startswith("#34  +0.055  iopub ← kernel  error")


def test_code_stream_and_stdin_are_texts(sample_log: Path) -> None:
    with LogReader(sample_log) as reader:
        code = describe(first(reader, "execute_request"), reader.start_ns).texts
        stream = describe(first(reader, "stream"), reader.start_ns).texts
        prompt = describe(first(reader, "input_request"), reader.start_ns).texts
        answer = describe(first(reader, "input_reply"), reader.start_ns).texts
    assert [(t.label, t.text, t.kind) for t in code] == [("code", "x = 21", "code")]
    assert [(t.label, t.text) for t in stream] == [("stdout", "stdout line\n")]
    assert [(t.label, t.text) for t in prompt] == [("prompt", "name? ")]
    assert [(t.label, t.text) for t in answer] == [("value", "Ada")]


def test_images_are_noted_not_dumped(sample_log: Path) -> None:
    with LogReader(sample_log) as reader:
        detail = describe(first(reader, "display_data"), reader.start_ns)
    assert detail.notes == [f"image/png: {len(png_bytes(640, 480))} bytes, 640×480"]
    assert [(t.label, t.text) for t in detail.texts] == [("text/plain", "<Figure size 640x480>")]


def test_events_show_their_fields(sample_log: Path) -> None:
    with LogReader(sample_log) as reader:
        detail = describe(reader[0], reader.start_ns)
    assert detail.title == "#0  +0.001  event kernel_started"
    assert detail.sections == [
        ("event", {"pid": 4343, "argv": ["python", "-m", "ipykernel_launcher"]})
    ]


def test_image_sizes() -> None:
    gif = b"GIF89a" + (7).to_bytes(2, "little") + (3).to_bytes(2, "little")
    assert image_size(png_bytes(12, 34)) == (12, 34)
    assert image_size(gif) == (7, 3)
    assert image_size(b"\xff\xd8\xff") is None
    jpeg = base64.b64encode(b"\xff\xd8\xff" + bytes(100)).decode()
    assert describe_image("image/jpeg", jpeg) == "image/jpeg: 103 bytes"
    assert describe_image("image/png", "%%%") == "image/png: 0 bytes"
