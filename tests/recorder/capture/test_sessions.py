"""The shared rich session records what it promises (other tests rely on it)."""

from __future__ import annotations

from krec.recorder.log.reader import LogReader


def test_rich_log_has_every_kind_of_message(rich_log):
    with LogReader(rich_log) as reader:
        assert reader.warnings == []
        types = {r.msg_type for r in reader if not r.is_event}
        events = {r.event for r in reader if r.is_event}
    for expected in (
        "execute_request",
        "execute_reply",
        "stream",
        "execute_result",
        "display_data",
        "update_display_data",
        "clear_output",
        "error",
        "input_request",
        "input_reply",
        "complete_reply",
        "inspect_reply",
        "is_complete_reply",
        "history_reply",
        "kernel_info_reply",
        "comm_open",
        "comm_msg",
        "comm_close",
        "status",
        "execute_input",
        "iopub_welcome",
    ):
        assert expected in types, expected
    assert {"kernel_started", "password_redacted", "recording_stopped"} <= events
