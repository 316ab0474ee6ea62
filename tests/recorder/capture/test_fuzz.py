"""Malformed multipart messages on every proxy socket, from both sides.

A fake kernel made of raw pyzmq sockets sits behind `krec record --existing`; a raw
frontend sits in front. Each broken kind goes to every socket explicitly, then
hypothesis sends random garbage anywhere; after each bad message a good one along the
same path must still arrive. At the end krec is still running, stops cleanly, and its
log is intact with the explicit bad messages flagged (what hypothesis draws only adds
to that: no verdict depends on a draw)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
import zmq
from conftest import KREC, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jupyter_client.session import Session

from krec.recorder.connect import ConnectionInfo, new_key
from krec.recorder.log.reader import LogReader

pytestmark = pytest.mark.timeout(300)
DELIM = b"<IDS|MSG>"
TARGETS = [
    "front:shell",
    "front:control",
    "front:stdin",
    "front:iopub",
    "front:hb",
    "kernel:shell",
    "kernel:control",
    "kernel:stdin",
    "kernel:iopub",
]


BROKEN = ("signature", "json", "short", "no-delimiter", "huge")


def signed_then_broken(session: Session, kind: str) -> list[bytes]:
    """A signed kernel_info_request, then broken one way (``BROKEN``)."""
    frames = session.serialize(session.msg("kernel_info_request", {}))
    i = frames.index(DELIM)
    if kind == "signature":
        frames[i + 1] = b"0" * 64
    elif kind == "json":
        frames[i + 2] = b"{not json"
        frames[i + 1] = session.sign(frames[i + 2 : i + 6])
    elif kind == "short":
        frames = frames[: i + 3]
    elif kind == "no-delimiter":
        frames = frames[:i] + frames[i + 1 :]
    elif kind == "huge":
        frames.append(b"x" * (2 << 20))
    return frames


# what krec flags for each broken kind when a frontend sends it on shell, control or stdin
FLAGGED = {
    "signature": "bad signature",
    "json": "header is not a JSON object with a msg_type",
    "short": "too few frames after <IDS|MSG>",
    "no-delimiter": "no <IDS|MSG> delimiter",
}


def bad_messages(session: Session) -> st.SearchStrategy[list[bytes]]:
    raw = st.lists(st.binary(max_size=64), min_size=0, max_size=8)
    structured = st.sampled_from(BROKEN).map(lambda kind: signed_then_broken(session, kind))
    with_delim = st.lists(st.sampled_from([DELIM, b"", b"{}", b"\x00\x01"]), max_size=8)
    return st.one_of(raw, structured, with_delim).filter(lambda f: len(f) > 0)


class FakeKernel:
    """Kernel-side sockets krec connects to; learns krec's routing identity."""

    def __init__(self, ctx: zmq.Context, info: ConnectionInfo) -> None:
        self.sock = {}
        for channel, kind in (
            ("shell", zmq.ROUTER),
            ("control", zmq.ROUTER),
            ("stdin", zmq.ROUTER),
            ("iopub", zmq.XPUB),
            ("hb", zmq.ROUTER),
        ):
            s = ctx.socket(kind)
            s.linger = 0
            s.bind(info.endpoint(channel))
            self.sock[channel] = s
        self.identity: dict[str, bytes] = {}

    def wait_for(self, channel: str, msg_id: str, timeout: float = 30) -> None:
        sock = self.sock[channel]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sock.poll(100):
                frames = sock.recv_multipart()
                if DELIM in frames:
                    i = frames.index(DELIM)
                    if len(frames) > i + 2 and msg_id.encode() in frames[i + 2]:
                        self.identity[channel] = frames[0]
                        return
        raise AssertionError(f"a good message on {channel} did not reach the kernel")


@pytest.fixture
def rig(tmp_path: Path):
    ctx = zmq.Context()
    kernel_info = ConnectionInfo(key=new_key(), kernel_name="fake").with_free_ports()
    kernel_cf, front_cf, log = tmp_path / "k.json", tmp_path / "f.json", tmp_path / "fuzz.krec"
    kernel_info.write(kernel_cf)
    kernel = FakeKernel(ctx, kernel_info)
    krec = subprocess.Popen(
        [
            *KREC,
            "record",
            "--existing",
            str(kernel_cf),
            "-o",
            str(log),
            "--connection-file",
            str(front_cf),
        ],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(front_cf.exists, 60, "the frontend connection file")
        front_info = ConnectionInfo.load(front_cf)
        session = Session(key=front_info.key)
        front = {}
        for channel, kind in (
            ("shell", zmq.DEALER),
            ("control", zmq.DEALER),
            ("stdin", zmq.DEALER),
            ("iopub", zmq.XSUB),
            ("hb", zmq.DEALER),
        ):
            s = ctx.socket(kind)
            s.linger = 0
            if channel in ("shell", "stdin"):
                s.identity = session.bsession
            s.connect(front_info.endpoint(channel))
            front[channel] = s
        front["iopub"].send(b"\x01")
        yield ctx, kernel, front, session, krec, log
    finally:
        if krec.poll() is None:
            krec.kill()
            krec.wait(30)
        for s in [*kernel.sock.values()]:
            s.close(linger=0)
        ctx.destroy(linger=0)


def good_round_trip(kernel: FakeKernel, front: dict, session: Session, channel: str) -> None:
    """A valid request from the frontend reaches the kernel, and a valid iopub message back."""
    if channel in ("shell", "control", "stdin"):
        msg = session.msg(
            "kernel_info_request" if channel != "stdin" else "input_reply",
            {} if channel != "stdin" else {"value": "x"},
        )
        front[channel].send_multipart(session.serialize(msg))
        kernel.wait_for(channel, msg["header"]["msg_id"])
    status = session.msg("status", {"execution_state": "idle"})
    deadline = time.monotonic() + 30
    sub = front["iopub"]
    while time.monotonic() < deadline:
        kernel.sock["iopub"].send_multipart(session.serialize(status))
        if sub.poll(200):
            while sub.poll(50):
                frames = sub.recv_multipart()
                if status["header"]["msg_id"].encode() in b"".join(frames):
                    return
    raise AssertionError("a good iopub message did not reach the frontend")


def send_bad_then_good(rig, target: str, frames: list[bytes]) -> None:
    """Send ``frames`` to ``target``; krec must still be running and forwarding after."""
    ctx, kernel, front, session, krec, log = rig
    side, channel = target.split(":")
    if side == "front":
        front[channel].send_multipart(frames)
    elif channel == "iopub":
        kernel.sock["iopub"].send_multipart(frames)
    else:
        kernel.sock[channel].send_multipart([kernel.identity.get(channel, b"?"), *frames])
    assert krec.poll() is None, "krec died"
    good_round_trip(
        kernel, front, session, channel if channel in ("shell", "control", "stdin") else "shell"
    )


def test_malformed_messages_everywhere_never_stop_forwarding(rig):
    ctx, kernel, front, session, krec, log = rig
    for channel in ("shell", "control", "stdin"):
        good_round_trip(kernel, front, session, channel)
    # every broken kind on every socket, explicitly: the flags below do not depend on draws
    for target in TARGETS:
        for kind in BROKEN:
            send_bad_then_good(rig, target, signed_then_broken(session, kind))

    # then random garbage anywhere: krec keeps running and forwarding, whatever is drawn
    @settings(
        max_examples=120,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(target=st.sampled_from(TARGETS), frames=bad_messages(session))
    def one_bad_message(target: str, frames: list[bytes]) -> None:
        send_bad_then_good(rig, target, frames)

    one_bad_message()
    krec.send_signal(signal.SIGINT)
    assert krec.wait(30) == 0
    with LogReader(log) as reader:
        assert reader.warnings == []
        flagged = {(r.ch, r.fields["reason"]) for r in reader if r.event == "bad_message"}
    for channel in ("shell", "control", "stdin"):
        for kind, reason in FLAGGED.items():
            assert (channel, reason) in flagged, f"{kind} on {channel} was not flagged"
    for channel in ("shell", "control", "stdin", "iopub"):  # what the kernel side sends, too
        assert (channel, "no <IDS|MSG> delimiter") in flagged, f"kernel {channel}"
