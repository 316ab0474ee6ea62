"""Driving a fresh kernel through a replay's plan, behind krec's own recording proxy.

``Replayer`` launches the kernel (recorded, like any krec session), sends each
planned request again as a new message signed with the new kernel's key, waits as
the plan says, and follows every request to its reply and ``status: idle``.
``input_request`` is answered with the recorded ``input_reply``; comm, subshell and
request ids are mapped wherever they appear in content; a request that gets no reply
within its bound (``plan.hung_bound``) is given up and the kernel interrupted.
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

from krec.recorder.capture.kernel import KernelRecording, kernel_fields
from krec.recorder.connect import ConnectionInfo, new_key
from krec.recorder.errors import KrecError
from krec.recorder.log.exchange import Exchange, Session
from krec.recorder.log.header import log_header
from krec.recorder.log.record import REDACTED
from krec.recorder.log.writer import LogWriter
from krec.recorder.replay.client import Incoming, KernelConnection
from krec.recorder.replay.plan import Action, hung_bound, plan

Progress = Callable[[int, int], None]
INTERRUPT_SETTLE = 10.0  # seconds an interrupted hung request gets to send its error reply
ABORT_WINDOW = 0.5  # and then quiet, as a person would leave, before the next request
SHUTDOWN_EXIT_WAIT = 10.0  # seconds a replayed kernel gets to exit after its shutdown_reply


@dataclass
class _Live:
    """A request as sent in the replay, and how far it has got."""

    exchange: Exchange
    msg_id: str = ""
    sent_at: float = 0.0
    busy_at: float = 0.0
    bound: float = 60.0  # seconds without a reply after which it counts as hung
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
        # a kernel that exits after its shutdown_reply may never send the idle that follows
        need_idle = ex.idle_t is not None and not (
            self.replied and ex.msg_type == "shutdown_request"
        )
        return (self.replied or not need_reply) and (self.idle or not need_idle)


def map_ids(value: Any, ids: dict[str, str]) -> Any:
    """``value`` (JSON) with every string that is a recorded id replaced by its replayed twin."""
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, dict):
        return {k: map_ids(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [map_ids(v, ids) for v in value]
    return value


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
        extra_arguments: Sequence[str] = (),
        cwd: str | None = None,
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
        self.request_map: dict[str, str] = {}  # recorded request msg_id -> replayed one
        self.first_send = 0.0
        self.last_done = 0.0
        frontend = ConnectionInfo(key=new_key(), kernel_name=entry["name"])
        header = log_header(
            kernel=kernel_fields(entry, extra_arguments, cwd),
            connection=frontend.public(),
            mode="replay",
            replay_of=os.path.abspath(session.path),
            # the replay of an audit log is one too: both sides drop the same payloads
            **({"audit": True} if session.header.get("audit") else {}),
        )
        self.writer = LogWriter(output, header)
        self.output = output
        # the kernel's own chatter (start-up warnings) stays off the user's terminal;
        # its last line explains a kernel that failed to start
        self._kernel_output = tempfile.TemporaryFile()  # noqa: SIM115 - closed by run()
        self.recording = KernelRecording(
            entry,
            frontend,
            self.writer,
            kernel_output=self._kernel_output,
            extra_arguments=extra_arguments,
            cwd=cwd,
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

    def bound(self, ex: Exchange) -> float:
        return hung_bound(ex, self.timeout)

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

    def _wait_until_ready(self, action: Action) -> None:
        while True:
            if self.cancel.is_set():
                return
            alive = self._check_kernel()
            if not alive:
                self._kernel_gone()
            waiting = [
                self.live[n] for n in action.after if n in self.live and not self.live[n].complete
            ]
            if waiting:
                if not self._give_up(waiting):
                    self._pump(0.05)
                continue
            if action.anchor is None or action.anchor not in self.live:
                return
            anchor = self.live[action.anchor]
            if anchor.complete:
                return
            if action.busy and not anchor.busy_at:
                due = time.monotonic() + action.offset  # not executing yet: not begun
            elif action.busy:
                due = max(anchor.sent_at, anchor.busy_at) + action.offset
            else:
                due = anchor.sent_at + action.offset
            if time.monotonic() >= due or self._give_up([anchor]):
                return
            self._pump(min(0.05, max(0.0, due - time.monotonic())))

    def _give_up(self, waiting: list[_Live]) -> bool:
        """Mark hung requests as timed out (and interrupt the kernel); True if any were.

        A request's clock starts when it was sent or when the last request before it
        completed, whichever is later, so a request queued behind a long one is not
        blamed for it.
        """
        now = time.monotonic()
        hung = [w for w in waiting if now - max(w.sent_at, self.last_done) > w.bound]
        if not hung:
            return False
        for live in hung:
            live.outcome = live.outcome or "timeout"
            recorded = live.exchange.busy_time / 1e9
            self.notes.append(
                f"request {live.exchange.number} ({live.exchange.msg_type}) got no reply within "
                f"{live.bound:.0f} s (it took {recorded:.2f} s in the recording); "
                "the kernel was interrupted"
            )
        self.recording.interrupt()
        # let the interrupted request end (its error reply and idle) before anything else
        # is sent: ipykernel aborts the requests that reach it just after an error
        end = time.monotonic() + INTERRUPT_SETTLE
        while time.monotonic() < end and not all(w.replied and w.idle for w in hung):
            if not self._check_kernel():
                break
            self._pump(0.05)
        end = time.monotonic() + ABORT_WINDOW
        while time.monotonic() < end:
            self._pump(0.05)
        return True

    def _kernel_gone(self) -> None:
        # what the kernel sent before it exited (the idle after a shutdown_reply) may still
        # be on its way through the proxy
        end = time.monotonic() + 1.0
        while time.monotonic() < end and not all(live.complete for live in self.live.values()):
            self._pump(0.05)
        for live in self.live.values():
            if not live.complete:
                live.outcome = "kernel died"

    def _perform(self, action: Action) -> None:
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
        ids = {**self.request_map, **self.comm_map, **self.subshell_map}
        content = map_ids(req.content, ids)
        extra = {}
        sub = req.header.get("subshell_id")
        if isinstance(sub, str):
            extra["subshell_id"] = ids.get(sub, sub)
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
        live = _Live(ex, header["msg_id"], time.monotonic(), bound=self.bound(ex))
        if ex.msg_id:
            self.request_map[ex.msg_id] = live.msg_id
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
            state = msg.content.get("execution_state") if mt == "status" else None
            if state == "idle":
                live.idle = True
            elif state == "busy" and not live.busy_at:
                live.busy_at = time.monotonic()
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
        while not all(live.complete for live in self.live.values()):
            if self.cancel.is_set() or not self._check_kernel():
                self._kernel_gone()
                break
            if self._give_up([live for live in self.live.values() if not live.complete]):
                continue
            self._pump(0.05)
            self._report_progress(total)
        # a kernel told to shut down broadcasts its shutdown_reply on iopub too, then exits:
        # wait for that exit (bounded) rather than stopping it before its last messages
        if any(self._shutting_down(live) for live in self.live.values()):
            end = time.monotonic() + SHUTDOWN_EXIT_WAIT
            while time.monotonic() < end and self._check_kernel():
                if not any(self._shutting_down(live) for live in self.live.values()):
                    break
                self._pump(0.05)
        # outputs after the last idle (there should be none) get a moment to be recorded
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            self._pump(0.05)

    @staticmethod
    def _shutting_down(live: _Live) -> bool:
        """A shutdown (not a restart) that was answered but whose idle has not come."""
        ex = live.exchange
        return (
            ex.msg_type == "shutdown_request"
            and live.replied
            and not live.idle
            and not live.outcome
            and not ex.request.content.get("restart")
        )

    def outcomes(self) -> dict[str, str]:
        return {live.msg_id: live.outcome for live in self.live.values() if live.outcome}
