"""The identity channel between krec.server and a recording: only a request signed with the
kernel's key is recorded, and the answer comes once the event is in the log."""

from __future__ import annotations

from pathlib import Path

from factories import log_header

from krec.recorder.capture.identity import IdentityListener, send_identity
from krec.recorder.capture.proxy import Proxy
from krec.recorder.connect import ConnectionInfo, new_key
from krec.recorder.log.reader import LogReader
from krec.recorder.log.writer import LogWriter


def test_only_a_signed_identity_is_recorded_and_the_answer_follows_the_write(
    tmp_path: Path,
) -> None:
    key = new_key()
    kernel = ConnectionInfo(key=key).with_free_ports()  # nothing listens there: not needed
    frontend = ConnectionInfo(key=key)
    log = tmp_path / "s.krec"
    proxy = Proxy(frontend, kernel, LogWriter(log, log_header()))
    proxy.start()
    connection_file = str(tmp_path / "kernel-1.json")
    listener = IdentityListener(connection_file, key, proxy)
    listener.start()
    try:
        fields = {"user": "alice", "session_path": "nb.ipynb", "kernel_id": "k1"}
        assert send_identity(connection_file, b"not the key", fields) == "error: bad signature"
        assert send_identity(connection_file, key, fields) == "ok"
        with LogReader(log) as reader:  # written before the answer
            (event,) = [r for r in reader if r.event == "client_identity"]
        assert event.fields == fields
        other = str(tmp_path / "kernel-2.json")
        assert send_identity(other, key, fields) == "unrecorded"
    finally:
        listener.stop()
        proxy.stop()
    assert send_identity(connection_file, key, fields) == "unrecorded"  # socket removed
