"""Replay a recorded session against a fresh kernel, itself recorded, then compare the two.

The plan comes from the log: each client request on shell and control is sent
again, as a new message signed with the new kernel's key. A request waits for
every request that had completed before it was originally sent (reply and
``status: idle``), so the replay runs as fast as the kernel allows; a request
that was originally sent while another was still running is sent at the same
offset after that one, so overlaps (interrupts, subshells, queued cells) happen
again. Signal interrupts and restarts are replayed where the log has them;
``input_request`` is answered with the recorded ``input_reply``; comm and
subshell ids the kernel chooses are mapped from the recorded ones.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .capture import REDACTED
from .client import Incoming, KernelConnection
from .connect import ConnectionInfo, new_key
from .diff import Report, compare_sessions
from .errors import KernelSpecError, KrecError
from .exchange import Exchange, Marker, Session, build_session, load_session
from .kernelrun import KernelRecording, kernel_fields
from .kernelspec import all_specs, find_spec
from .logfile import LogReader, LogWriter, make_header

Progress = Callable[[int, int], None]


@dataclass
class _Action:
    """One step of the plan: send an exchange again, interrupt, or restart."""

    kind: str  # "send", "interrupt", "restart"
    exchange: Exchange | None
    after: list[int]  # exchange numbers that must be complete first
    anchor: int | None = None  # exchange number this one overlapped with
    offset: float = 0.0  # seconds after the anchor was sent
    settle: float = 0.0  # seconds to leave after the last completed request (see plan)


@dataclass
class _Live:
    """A request as sent in the replay, and how far it has got."""

    exchange: Exchange
    msg_id: str = ""
    sent_at: float = 0.0
    replied: bool = False
    idle: bool = False
    outcome: str = ""
    done_at: float = 0.0
    answers: list[Any] = field(default_factory=list)
    comm_opens: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        if self.outcome:
            return True
        ex = self.exchange
        need_reply = ex.reply is not None
        need_idle = ex.idle_t is not None
        return (self.replied or not need_reply) and (self.idle or not need_idle)


@dataclass
class ReplayResult:
    """What a replay produced: its own log, the report, and timings (seconds)."""

    log: str
    report: Report
    wall_time: float
    busy_time: float
    notes: list[str]

    @property
    def ratio(self) -> float:
        return self.wall_time / self.busy_time if self.busy_time else 0.0


def plan(session: Session) -> list[_Action]:
    """The actions of a replay, in log order, with what each must wait for."""
    actions: list[_Action] = []
    seen: list[Exchange] = []
    for item in session.timeline:
        t = item.t
        completed = [e.number for e in seen if e.done_t is not None and e.done_t <= t]
        running = [e for e in seen if e.done_t is None or e.done_t > t]
        anchor = running[0] if running else None
        offset = (t - anchor.t) / 1e9 if anchor else 0.0
        if isinstance(item, Marker):
            if item.event == "restart":
                actions.append(_Action("restart", None, [e.number for e in seen]))
            elif anchor is not None:
                actions.append(_Action("interrupt", None, completed, anchor.number, offset))
            continue
        actions.append(_Action("send", item, completed, anchor.number if anchor else None, offset))
        seen.append(item)
    return actions


class Replayer:
    """Runs a plan against a fresh kernel behind krec's own recording proxy."""

    def __init__(
        self,
        session: Session,
        entry: dict[str, Any],
        output: str,
        *,
        timeout: float = 60.0,
        password: str | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.session = session
        self.timeout = timeout
        self.password = password
        self.progress = progress
        self.cancel = cancel or threading.Event()
        self.notes: list[str] = []
        self.live: dict[int, _Live] = {}
        self.by_msg_id: dict[str, _Live] = {}
        self.comm_map: dict[str, str] = {}
        self.subshell_map: dict[str, str] = {}
        self.first_send = 0.0
        self.last_done = 0.0
        frontend = ConnectionInfo(key=new_key(), kernel_name=entry["name"])
        header = make_header(
            kernel=kernel_fields(entry),
            connection=frontend.public(),
            mode="replay",
            replay_of=os.path.abspath(session.path),
        )
        self.writer = LogWriter(output, header)
        self.output = output
        # the kernel's own chatter (start-up warnings) stays off the user's terminal;
        # its last line explains a kernel that failed to start
        self._kernel_output = tempfile.TemporaryFile()  # noqa: SIM115 - closed by run()
        self.recording = KernelRecording(
            entry, frontend, self.writer, kernel_output=self._kernel_output
        )
        self.client: KernelConnection | None = None

    # -- running --------------------------------------------------------------

    def run(self) -> None:
        rec = self.recording
        rec.start_proxy()
        try:
            rec.launch()
            self.client = KernelConnection(rec.frontend)
            self._wait_ready()
            actions = plan(self.session)
            total = len(self.session.exchanges)
            for action in actions:
                if self.cancel.is_set():
                    self.notes.append("replay cancelled")
                    break
                self._wait_until_ready(action)
                self._perform(action)
                self._report_progress(total)
            self._finish(total)
        finally:
            if self.client is not None:
                self.client.close()
            rec.close("replay finished")
            self._kernel_output.close()

    def _report_progress(self, total: int) -> None:
        if self.progress is not None:
            done = sum(1 for live in self.live.values() if live.complete)
            self.progress(done, total)

    def _wait_ready(self, timeout: float = 60.0) -> None:
        """Probe the kernel until it answers and its iopub reaches us through the proxy.

        The probe's kernel_info goes straight to the kernel, not through the proxy,
        so the replay's own log holds only the replayed requests (the probe's
        status messages do pass through: they show that iopub is connected).
        """
        assert self.client is not None
        deadline = time.monotonic() + timeout
        self.recording.wait_connected(timeout)
        with KernelConnection(self.recording.kernel) as probe:
            while time.monotonic() < deadline:
                if not self._check_kernel():
                    raise KrecError(f"the replay kernel died while starting{self._said()}")
                header = probe.send("shell", "kernel_info_request", {})
                replied = iopub = False
                end = time.monotonic() + 1.0
                while time.monotonic() < end and not (replied and iopub):
                    for msg in probe.poll(0.02):
                        replied = replied or msg.parent_id == header["msg_id"]
                    for msg in self.client.poll(0.02):
                        iopub = iopub or msg.parent_id == header["msg_id"]
                if replied and iopub:
                    end = time.monotonic() + 0.1  # the probe's idle, so nothing is left over
                    while time.monotonic() < end:
                        self.client.poll(0.02)
                    return
        raise KrecError(
            f"the replay kernel did not become ready within {timeout:.0f} s{self._said()}"
        )

    def _said(self) -> str:
        """The kernel's last line of output, as an explanation ('' if it said nothing)."""
        self._kernel_output.seek(0)
        lines = [
            ln
            for ln in self._kernel_output.read().decode(errors="replace").splitlines()
            if ln.strip()
        ]
        return f" (the kernel said: {lines[-1].strip()})" if lines else ""

    def _check_kernel(self) -> bool:
        proc = self.recording.proc
        return proc is not None and proc.poll() is None

    def _wait_until_ready(self, action: _Action) -> None:
        while True:
            if self.cancel.is_set():
                return
            alive = self._check_kernel()
            if not alive:
                self._kernel_gone()
            waiting = [
                self.live[n] for n in action.after if n in self.live and not self.live[n].complete
            ]
            if not waiting:
                if action.anchor is None or action.anchor not in self.live:
                    return
                anchor = self.live[action.anchor]
                due = anchor.sent_at + action.offset
                if anchor.complete or time.monotonic() >= due:
                    return
                self._pump(min(0.05, max(0.0, due - time.monotonic())))
                continue
            oldest = min(live.sent_at for live in waiting)
            if time.monotonic() - oldest > self.timeout:
                for live in waiting:
                    live.outcome = live.outcome or "timeout"
                self.notes.append(
                    f"request {waiting[0].exchange.number} timed out after "
                    f"{self.timeout:.0f} s; the kernel was interrupted"
                )
                self.recording.interrupt()
                continue
            self._pump(0.05)

    def _kernel_gone(self) -> None:
        for live in self.live.values():
            if not live.complete:
                live.outcome = "kernel died"

    def _perform(self, action: _Action) -> None:
        if action.kind == "send":
            assert action.exchange is not None
            if not self._check_kernel():
                self._restart("kernel_died_in_replay", kill=True)
            self._send(action.exchange)
        elif action.kind == "interrupt":
            self.recording.interrupt()
        elif action.kind == "restart":
            self._restart("requested")

    def _restart(self, reason: str, kill: bool = False) -> None:
        rec = self.recording
        proc = rec.proc
        if proc is not None and proc.poll() is None:
            if not kill:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        self._kernel_gone()
        rec.proxy.event("restart", reason=reason)
        rec.launch()
        self._wait_ready()

    def _send(self, ex: Exchange) -> None:
        assert self.client is not None
        req = ex.request
        content = dict(req.content)
        if req.msg_type in ("comm_msg", "comm_close") and content.get("comm_id") in self.comm_map:
            content["comm_id"] = self.comm_map[content["comm_id"]]
        if isinstance(content.get("subshell_id"), str):
            content["subshell_id"] = self.subshell_map.get(
                content["subshell_id"], content["subshell_id"]
            )
        extra = {}
        sub = req.header.get("subshell_id")
        if isinstance(sub, str):
            extra["subshell_id"] = self.subshell_map.get(sub, sub)
        version = req.header.get("version")
        header = self.client.send(
            ex.ch,
            req.msg_type,
            content,
            metadata=req.frame("metadata"),
            buffers=list(req.buffers),
            header_extra=extra or None,
            version=version if isinstance(version, str) else None,
        )
        live = _Live(ex, header["msg_id"], time.monotonic())
        live.answers = [r.content for r in ex.input_replies()]
        self.live[ex.number] = live
        self.by_msg_id[live.msg_id] = live
        if not self.first_send:
            self.first_send = live.sent_at

    def _pump(self, timeout: float) -> None:
        assert self.client is not None
        for msg in self.client.poll(timeout):
            live = self.by_msg_id.get(msg.parent_id)
            if live is None:
                continue
            self._handle(live, msg)

    def _handle(self, live: _Live, msg: Incoming) -> None:
        mt = msg.msg_type
        was_complete = live.complete
        if msg.channel == live.exchange.ch and mt.endswith("_reply"):
            live.replied = True
            if mt == "create_subshell_reply":
                self._map_subshell(live, msg)
        elif msg.channel == "iopub":
            if mt == "status" and msg.content.get("execution_state") == "idle":
                live.idle = True
            elif mt == "comm_open":
                self._map_comm(live, msg)
        elif msg.channel == "stdin" and mt == "input_request":
            self._answer(live, msg)
        if live.complete and not was_complete:
            live.done_at = self.last_done = time.monotonic()

    def _map_comm(self, live: _Live, msg: Incoming) -> None:
        live.comm_opens.append(str(msg.content.get("comm_id", "")))
        recorded = [
            r.content.get("comm_id") for r in live.exchange.outputs if r.msg_type == "comm_open"
        ]
        i = len(live.comm_opens) - 1
        if i < len(recorded) and isinstance(recorded[i], str):
            self.comm_map[recorded[i]] = live.comm_opens[i]

    def _map_subshell(self, live: _Live, msg: Incoming) -> None:
        reply = live.exchange.reply
        old = reply.content.get("subshell_id") if reply is not None else None
        new = msg.content.get("subshell_id")
        if isinstance(old, str) and isinstance(new, str):
            self.subshell_map[old] = new

    def _answer(self, live: _Live, msg: Incoming) -> None:
        assert self.client is not None
        if live.answers:
            content = dict(live.answers.pop(0))
        else:
            content = {"value": ""}
            self.notes.append(
                f"request {live.exchange.number} asked for input the recording "
                "never answered; replied with an empty string"
            )
        if content.get("value") == REDACTED:
            if self.password is not None:
                content["value"] = self.password
            else:
                content["value"] = ""
                self.notes.append(
                    f"request {live.exchange.number}: the password was redacted "
                    "in the recording; answered with an empty string "
                    "(give --password to answer it)"
                )
        self.client.send("stdin", "input_reply", content, parent=msg.header)

    def _finish(self, total: int) -> None:
        deadline = time.monotonic() + self.timeout
        while not all(live.complete for live in self.live.values()):
            if self.cancel.is_set() or not self._check_kernel():
                self._kernel_gone()
                break
            if time.monotonic() > deadline:
                for live in self.live.values():
                    if not live.complete:
                        live.outcome = "timeout"
                break
            self._pump(0.05)
            self._report_progress(total)
        # outputs after the last idle (there should be none) get a moment to be recorded
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            self._pump(0.05)

    def outcomes(self) -> dict[str, str]:
        return {live.msg_id: live.outcome for live in self.live.values() if live.outcome}


def replay(
    log_path: str,
    *,
    kernel_name: str | None = None,
    output: str | None = None,
    timeout: float = 60.0,
    password: str | None = None,
    ignore: Sequence[str] = (),
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> ReplayResult:
    """Replay ``log_path`` against a fresh kernel and compare; see the module docstring."""
    session = load_session(log_path)
    name = kernel_name or str((session.header.get("kernel") or {}).get("name") or "")
    if not name:
        raise KrecError(f"{log_path} does not name its kernel; give --kernel NAME")
    try:
        entry = find_spec(name)
    except KernelSpecError:
        known = ", ".join(sorted(all_specs())) or "none"
        raise KernelSpecError(
            f"the log's kernel {name!r} is not installed here; pick one with --kernel NAME "
            f"(installed: {known})"
        ) from None
    if output is None:
        stem = os.path.splitext(os.path.basename(log_path))[0]
        output = os.path.join("krec-logs", f"{stem}-replay-{time.strftime('%Y%m%d-%H%M%S')}.krec")
    replayer = Replayer(
        session, entry, output, timeout=timeout, password=password, progress=progress, cancel=cancel
    )
    replayer.run()
    with LogReader(output) as reader:
        replayed = build_session(reader)
    outcomes = replayer.outcomes()
    report = compare_sessions(
        session,
        replayed,
        ignore=ignore,
        outcomes_b={
            e.number: outcomes[e.msg_id] for e in replayed.exchanges if e.msg_id in outcomes
        },
    )
    report.notes.extend(replayer.notes)
    wall = max(0.0, replayer.last_done - replayer.first_send)
    return ReplayResult(output, report, wall, session.busy_time / 1e9, replayer.notes)
