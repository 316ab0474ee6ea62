"""The plan of a replay and how its kernel is launched (krec.recorder.replay.plan and .launch),
from built logs, without a kernel."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from factories import KERNEL, LogBuilder, stream

from krec.recorder.errors import KrecError
from krec.recorder.log.exchange import load_session
from krec.recorder.replay.launch import Launch, recorded_launch, replay_cwd
from krec.recorder.replay.plan import HUNG_FACTOR, HUNG_FLOOR, hung_bound, plan


def test_requests_that_ran_one_after_another_wait_for_each_other(tmp_path: Path):
    with LogBuilder(tmp_path / "p.krec") as b:
        for code in ("a = 1", "b = 2", "c = 3"):
            b.execute(code)
    actions = plan(load_session(str(tmp_path / "p.krec")))
    assert [(a.kind, a.exchange.number, a.after, a.anchor) for a in actions] == [
        ("send", 1, [], None),
        ("send", 2, [1], None),
        ("send", 3, [1, 2], None),
    ]


def test_a_request_sent_while_another_ran_keeps_its_offset(tmp_path: Path):
    with LogBuilder(tmp_path / "p.krec") as b:
        first = b.message("execute_request", {"code": "slow()"})
        queued = b.message("execute_request", {"code": "queued()"}, ms=2)  # before busy
        b.message("status", {"execution_state": "busy"}, parent=first, ms=3)
        hurry = b.message("interrupt_request", {}, ms=500)  # while it was executing
        b.message("interrupt_reply", {"status": "ok"}, parent=hurry)
        b.message("execute_reply", {"status": "error"}, parent=first)
        b.message("status", {"execution_state": "idle"}, parent=first)
        b.message("status", {"execution_state": "busy"}, parent=queued)
        b.message("execute_reply", {"status": "ok"}, parent=queued)
        b.message("status", {"execution_state": "idle"}, parent=queued)
    send_first, send_queued, send_hurry = plan(load_session(str(tmp_path / "p.krec")))
    assert (send_first.anchor, send_first.after) == (None, [])
    assert (send_queued.anchor, send_queued.busy) == (1, False)
    assert send_queued.offset == pytest.approx(0.002)  # after the first was sent
    assert (send_hurry.anchor, send_hurry.busy, send_hurry.after) == (1, True, [])
    assert send_hurry.offset == pytest.approx(0.5)  # after the first started executing


def test_a_request_logged_after_the_reply_it_waited_for_ran_after_it(tmp_path: Path):
    """The reply (shell) and the idle (iopub) reach the log through different sockets: the
    next request can be logged between them, though the frontend sent it after both."""
    with LogBuilder(tmp_path / "p.krec") as b:
        first = b.message("execute_request", {"code": "a = 1"})
        b.message("status", {"execution_state": "busy"}, parent=first)
        b.message("execute_reply", {"status": "ok"}, parent=first)
        b.message("execute_request", {"code": "b = 2"})
        b.message("status", {"execution_state": "idle"}, parent=first)
    send_first, send_next = plan(load_session(str(tmp_path / "p.krec")))
    assert (send_next.after, send_next.anchor, send_next.offset) == ([1], None, 0.0)


def test_a_restart_waits_for_every_request_before_it(tmp_path: Path):
    with LogBuilder(tmp_path / "p.krec") as b:
        b.execute("a = 1")
        b.execute("b = 2")
        b.event("restart", reason="requested")
    *sends, restart = plan(load_session(str(tmp_path / "p.krec")))
    assert [a.kind for a in sends] == ["send", "send"]
    assert (restart.kind, restart.exchange, restart.after) == ("restart", None, [1, 2])


def test_a_shutdown_waits_for_every_request_the_recorded_kernel_answered(tmp_path: Path):
    """nbclient's shutdown right after a widget's comm_msgs (tests/notebooks/nbclient/Output):
    the kernel handled the last comm_msg after the shutdown_request had arrived; sent at
    its recorded offset, the shutdown could win the race and the comm_msg go unanswered."""
    with LogBuilder(tmp_path / "p.krec") as b:
        b.execute("w = Output()")
        first = b.message("comm_msg", {"comm_id": "c1"}, ch="shell", source="client")
        last = b.message("comm_msg", {"comm_id": "c1"}, ch="shell", source="client")
        b.message("status", {"execution_state": "busy"}, parent=first)
        bye = b.message("shutdown_request", {"restart": False})
        b.message("status", {"execution_state": "idle"}, parent=first)
        b.message("status", {"execution_state": "busy"}, parent=last)
        b.message("status", {"execution_state": "idle"}, parent=last)
        b.message("shutdown_reply", {"status": "ok", "restart": False}, parent=bye)
    *_, shutdown = plan(load_session(str(tmp_path / "p.krec")))
    assert (shutdown.kind, shutdown.exchange.msg_type) == ("send", "shutdown_request")
    assert (shutdown.after, shutdown.anchor) == ([1, 2, 3], None)


def test_a_request_logged_before_requests_sent_earlier_is_planned_after_them(tmp_path: Path):
    """Each channel reaches the capture thread through its own socket: under load the
    shutdown_request nbclient sent after the last cell was logged after the second of six
    (a replay shut the kernel down there and the last cells found it dead)."""

    def at(ms: int) -> str:
        return f"2023-11-14T22:13:20.{ms:03d}000Z"

    with LogBuilder(tmp_path / "p.krec") as b:
        # captured a second after the first was sent, as a loaded capture thread may
        first = b.message("execute_request", {"code": "a = 1"}, date=at(1), ms=1000)
        b.message("status", {"execution_state": "busy"}, parent=first)
        b.message("execute_reply", {"status": "ok"}, parent=first)
        b.message("status", {"execution_state": "idle"}, parent=first)
        bye = b.message("shutdown_request", {"restart": False}, date=at(900))
        for n in range(2, 5):
            req = b.message("execute_request", {"code": f"v = {n}"}, date=at(100 * n))
            b.message("status", {"execution_state": "busy"}, parent=req)
            b.message("execute_reply", {"status": "ok"}, parent=req)
            b.message("status", {"execution_state": "idle"}, parent=req)
        b.message("shutdown_reply", {"status": "ok", "restart": False}, parent=bye)
    actions = plan(load_session(str(tmp_path / "p.krec")))
    assert [(a.exchange.number, a.after, a.anchor) for a in actions] == [
        (1, [], None),
        (3, [1], None),
        (4, [1, 3], None),
        (5, [1, 3, 4], None),
        (2, [1, 3, 4, 5], None),  # the shutdown, last, once every cell is answered
    ]


def test_the_hung_bound_grows_with_the_recorded_time_between_a_floor_and_the_timeout(
    tmp_path: Path,
):
    with LogBuilder(tmp_path / "p.krec") as b:
        b.execute("quick()")
        b.execute("slow()", [stream("done\n")], busy_ms=2000)
    quick, slow = load_session(str(tmp_path / "p.krec")).exchanges
    assert hung_bound(quick, 60) == HUNG_FLOOR
    assert slow.busy_time > 2e9 and hung_bound(slow, 600) == HUNG_FACTOR * slow.busy_time / 1e9
    assert hung_bound(slow, 5) == 5


def test_the_launch_comes_from_the_first_kernel_started_event(tmp_path: Path):
    argv = [*KERNEL["argv"], "--HistoryManager.hist_file=:memory:"]
    with LogBuilder(tmp_path / "p.krec") as b:
        b.event("kernel_started", argv=argv, cwd="/work/notebooks")
        b.execute("a = 1")
    launch = recorded_launch(load_session(str(tmp_path / "p.krec")))
    assert launch == Launch(["--HistoryManager.hist_file=:memory:"], "/work/notebooks")
    with LogBuilder(tmp_path / "bare.krec") as b:
        b.execute("a = 1")
    assert recorded_launch(load_session(str(tmp_path / "bare.krec"))) == Launch([], None)


def test_the_replay_kernel_runs_in_the_recorded_directory_when_it_exists(tmp_path: Path):
    here = os.getcwd()
    assert replay_cwd(Launch([], str(tmp_path)), None) == (str(tmp_path), [])
    assert replay_cwd(Launch([], str(tmp_path)), here) == (os.path.abspath(here), [])
    cwd, notes = replay_cwd(Launch([], None), None)
    assert cwd == here and "does not record the kernel's working directory" in notes[0]
    cwd, notes = replay_cwd(Launch([], str(tmp_path / "gone")), None)
    assert cwd == here and "does not exist here" in notes[0] and "--cwd DIR" in notes[0]
    with pytest.raises(KrecError, match="no such directory"):
        replay_cwd(Launch([], None), str(tmp_path / "gone"))
