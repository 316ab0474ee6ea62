"""The capture thread on its own: every message pushed to it is written, in order, before
``recording_stopped``; outputs that overtake their request wait for it."""

from __future__ import annotations

import json
from pathlib import Path

import zmq

from krec.recorder.capture.thread import _SYNC as SYNC
from krec.recorder.capture.thread import CaptureThread
from krec.recorder.log.header import log_header
from krec.recorder.log.reader import LogReader
from krec.recorder.log.writer import LogWriter
from krec.recorder.wire import DELIM, Signer


def frames(code: bytes, msg_id: str, parent_id: str, msg_type: str) -> list[bytes]:
    header = json.dumps(
        {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "session": "s",
            "username": "u",
            "date": "2026-01-01T00:00:00Z",
            "version": "5.4",
        }
    )
    parent = json.dumps({"msg_id": parent_id, "msg_type": "execute_request"} if parent_id else {})
    return [code, DELIM, b"", header.encode(), parent.encode(), b"{}", b"{}"]


def run_capture(tmp_path: Path, messages: list[list[bytes]]) -> list:
    cctx, fctx = zmq.Context(), zmq.Context()
    log = tmp_path / "c.krec"
    capture = CaptureThread(
        writer=LogWriter(log, log_header()),
        capture_ctx=cctx,
        forward_ctx=fctx,
        capture_addr="inproc://cap",
        inject_addr="inproc://inject",
        signer=Signer(b""),
    )
    push = cctx.socket(zmq.PUSH)
    push.sndhwm = 0
    push.connect("inproc://cap")
    try:
        for m in messages:  # queued before the thread even starts: it must drain them all
            push.send_multipart(m)
        capture.start()
        assert capture.ready.wait(10)
        capture.release_forward_sockets()
        capture.drain_and_stop("test over")
        assert not capture.is_alive()
    finally:
        push.close(linger=0)
        fctx.term()
        cctx.term()
    with LogReader(log) as reader:
        return list(reader)


def test_everything_queued_is_written_before_recording_stopped(tmp_path: Path):
    messages = [frames(b"O", f"out{i}", "", "stream") for i in range(3000)]
    records = run_capture(tmp_path, messages)
    messages_written = [r.msg_id for r in records if not r.is_event]
    assert messages_written == [f"out{i}" for i in range(3000)]
    # a seal after every 1,000 records, then recording_stopped and the final seal
    assert [r.index for r in records if r.event == "seal"] == [1000, 2001, 3002, 3004]
    assert records[-2].event == "recording_stopped" and records[-1].event == "seal"
    assert records[-2].fields["reason"] == "test over"


def test_outputs_that_overtake_their_request_follow_it(tmp_path: Path):
    messages = [
        frames(b"O", "busy", "req1", "status"),  # the kernel's output, queued first
        frames(b"O", "input", "req1", "execute_input"),
        frames(b"s", "req1", "", "execute_request"),  # its request, from another forwarder
        frames(b"S", "reply", "req1", "execute_reply"),
    ]
    records = run_capture(tmp_path, messages)
    assert [r.msg_id for r in records if not r.is_event] == ["req1", "busy", "input", "reply"]


def test_an_answer_read_before_its_prompt_follows_it(tmp_path: Path):
    # jupyter_client answers with an empty parent; the capture socket can hand krec the
    # answer first when both forwarders push at once
    messages = [
        frames(b"s", "req1", "", "execute_request"),
        frames(b"i", "answer", "", "input_reply"),
        frames(b"I", "prompt", "req1", "input_request"),
        frames(b"S", "reply", "req1", "execute_reply"),
        frames(b"i", "stray", "", "input_reply"),  # no prompt at all: still recorded
    ]
    records = run_capture(tmp_path, messages)
    assert [r.msg_id for r in records if not r.is_event] == [
        "req1",
        "prompt",
        "answer",
        "reply",
        "stray",
    ]


def lagging_capture(
    tmp_path: Path,
    messages: list[list[bytes]],
    events: list[str],
    wake: bool,
    on_control=None,
    synced=None,
):
    """A capture thread that has fallen behind: ``messages`` already wait on its socket
    when other threads queue ``events``; it then records what it has, step by step
    (``wake``: from a blocking receive, as when messages wake it, else from the top of
    its loop). ``synced``: what ``sync()`` would wait on, queued after the events.
    Driven from here, not run, so that the order is not left to the clock."""
    ctx = zmq.Context()
    log = tmp_path / "lag.krec"
    capture = CaptureThread(
        writer=LogWriter(log, log_header()),
        capture_ctx=ctx,
        forward_ctx=ctx,
        capture_addr="inproc://cap",
        inject_addr="inproc://inject",
        signer=Signer(b""),
        on_control=on_control,
    )
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    pull.bind("inproc://cap")
    push.connect("inproc://cap")
    capture._pull = pull
    try:
        for m in messages:  # inproc: in the socket's pipe once send returns
            push.send_multipart(m)
        for name in events:
            capture.event(name, exit_code=0)
        if synced is not None:
            capture._events.put((0, SYNC, {"_written": synced}))
        if wake:
            capture._receive(pull, block=True)
        capture._write_events()
        assert capture._receive(pull, block=False) == 0, "nothing is left waiting"
        capture.writer.close()
    finally:
        push.close(linger=0)
        pull.close(linger=0)
        ctx.term()
    with LogReader(log) as reader:
        records = [r for r in reader if r.event != "seal"]
    return [r.event or r.msg_id for r in records], [r.t for r in records]


def test_a_kernel_stopped_under_load_ends_after_what_it_sent(tmp_path: Path):
    # krec stops the kernel after the frontend saw a request's output; a capture thread
    # that lags must not write kernel_stopped before that request (its trace span would
    # then open after the kernel had gone)
    messages = [
        frames(b"s", "req", "", "execute_request"),
        frames(b"O", "input", "req", "execute_input"),
    ]
    for wake in (False, True):
        (tmp_path / str(wake)).mkdir()
        order, times = lagging_capture(tmp_path / str(wake), messages, ["kernel_stopped"], wake)
        assert order == ["protocol_version", "req", "input", "kernel_stopped"], wake
        assert times == sorted(times), wake


def test_an_interrupt_stays_before_the_messages_that_woke_the_thread(tmp_path: Path):
    # an interrupt krec signalled comes before the kernel's answer to it; an ending event
    # queued after it still waits for the messages
    messages = [frames(b"O", "err", "", "error"), frames(b"O", "idle", "", "status")]
    order, times = lagging_capture(tmp_path, messages, ["interrupt", "kernel_died"], wake=True)
    assert order == ["interrupt", "err", "idle", "kernel_died"]
    assert times == sorted(times)


def test_sync_returns_once_what_was_forwarded_is_seen(tmp_path: Path):
    # sync() on a running thread busy with a flood; a stopped thread syncs nothing
    cctx, fctx = zmq.Context(), zmq.Context()
    seen: list[tuple[str, dict]] = []
    capture = CaptureThread(
        writer=LogWriter(tmp_path / "s.krec", log_header()),
        capture_ctx=cctx,
        forward_ctx=fctx,
        capture_addr="inproc://cap",
        inject_addr="inproc://inject",
        signer=Signer(b""),
        on_control=lambda msg_type, content: seen.append((msg_type, content)),
    )
    capture.start()
    push = cctx.socket(zmq.PUSH)
    push.sndhwm = 0
    push.connect("inproc://cap")
    try:
        assert capture.ready.wait(10)
        for i in range(3000):
            push.send_multipart(frames(b"O", f"out{i}", "", "stream"))
        shutdown = frames(b"c", "bye", "", "shutdown_request")
        shutdown[-1] = b'{"restart": true}'
        push.send_multipart(shutdown)
        assert capture.sync(30)
        assert seen == [("shutdown_request", {"restart": True})]
        assert capture.messages == 3001
    finally:
        capture.release_forward_sockets()
        capture.drain_and_stop("test over")
        push.close(linger=0)
        fctx.term()
        cctx.term()
    assert not capture.sync(0.1), "a stopped capture thread syncs nothing"


def test_a_lagging_capture_thread_has_seen_the_shutdown_request_when_synced(tmp_path: Path):
    # the wrapper decides restart / exit / death from the shutdown_request it saw on
    # control, once the kernel has exited; by then that request waits on the socket
    order: list[str] = []

    class Synced:
        def set(self) -> None:
            order.append("synced")

    shutdown = frames(b"c", "bye", "", "shutdown_request")
    shutdown[-1] = b'{"restart": true}'
    messages = [frames(b"O", "out", "", "stream"), shutdown]
    for wake in (False, True):
        (tmp_path / str(wake)).mkdir()
        order.clear()
        lagging_capture(
            tmp_path / str(wake),
            messages,
            [],
            wake,
            on_control=lambda msg_type, content: order.append(msg_type),
            synced=Synced(),
        )
        assert order == ["shutdown_request", "synced"], wake
