"""Replay a recorded session against a fresh kernel, itself recorded, then compare the two.

The plan comes from the log: each client request on shell and control is sent
again, as a new message signed with the new kernel's key. A request waits for
every request that had completed before it was originally sent (reply and
``status: idle``), so the replay runs as fast as the kernel allows; a request
that was originally sent while another was still running is sent at the same
offset after that one, so overlaps (interrupts, subshells, queued cells) happen
again. The kernel is launched as the recorded one was (extra arguments, working
directory). Signal interrupts are replayed relative to what the kernel was doing
(into a request, or between two), restarts where the log has them;
``input_request`` is answered with the recorded ``input_reply``; comm, subshell
and request ids are mapped wherever they appear in content; a request that gets
no reply is given up after a bound derived from its recorded duration.
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
from datetime import datetime
from typing import Any

from krec.recorder.capture.kernel import KernelRecording, kernel_fields
from krec.recorder.capture.thread import REDACTED
from krec.recorder.connect import ConnectionInfo, new_key
from krec.recorder.errors import KernelSpecError, KrecError
from krec.recorder.kernelspec import all_specs, find_spec
from krec.recorder.log.exchange import Exchange, Marker, Session, build_session, load_session
from krec.recorder.log.header import log_header
from krec.recorder.log.reader import LogReader
from krec.recorder.log.record import Record
from krec.recorder.log.writer import LogWriter
from krec.recorder.replay.client import Incoming, KernelConnection
from krec.recorder.replay.diff import Report, compare_sessions, merge_runs

Progress = Callable[[int, int], None]
INTERRUPT_SETTLE = 10.0  # seconds an interrupted hung request gets to send its error reply
ABORT_WINDOW = 0.5  # and then quiet, as a person would leave, before the next request
SHUTDOWN_EXIT_WAIT = 10.0  # seconds a replayed kernel gets to exit after its shutdown_reply


@dataclass
class _Action:
    """One step of the plan: send an exchange again, interrupt, or restart."""

    kind: str  # "send", "interrupt", "restart"
    exchange: Exchange | None
    after: list[int]  # exchange numbers that must be complete first
    anchor: int | None = None  # exchange number this one overlapped with
    offset: float = 0.0  # seconds after the anchor was sent (or started executing: busy)
    busy: bool = False  # offset counts from the anchor's busy status, not from its send


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


@dataclass
class ReplayResult:
    """What a replay produced: its own log, the report, and timings (seconds)."""

    log: str
    report: Report
    wall_time: float  # of one replay (the mean, with --repeat)
    busy_time: float
    notes: list[str]
    logs: list[str] = field(default_factory=list)  # every replay's own log (--repeat)

    @property
    def ratio(self) -> float:
        return self.wall_time / self.busy_time if self.busy_time else 0.0


def _sent(rec: Record) -> int:
    """When its sender sent ``rec`` (its header's date, ns), else when krec captured it.

    Capture times lag behind under load (records are timestamped in batches), while an
    interrupt event is timestamped the moment krec sends the signal: a reply sent just
    before jupyter_client's shutdown interrupt may be captured just after it.
    """
    date = rec.header.get("date")
    if isinstance(date, str):
        with contextlib.suppress(ValueError):
            sent = datetime.fromisoformat(date.replace("Z", "+00:00"))
            if sent.tzinfo is not None:
                return min(rec.t, int(sent.timestamp() * 1e9))
    return rec.t


def _interrupted(session: Session, seen: list[Exchange], t: int) -> Exchange | None:
    """The request a signal interrupt at ``t`` hit: it had started executing (its busy
    status) and was answered after ``t`` (a shell request first); None when the kernel
    was between requests."""
    ends = ((e, _sent(e.reply) if e.reply is not None else e.idle_t) for e in seen)
    running = [e for e, end in ends if end is not None and end > t]
    # sent but not started (its busy came after the interrupt): the kernel was not running it
    executing = [e for e in running if e.busy_t is not None and e.busy_t <= t]
    if not executing:
        return None
    return ([e for e in executing if e.ch == "shell"] or executing)[0]


@dataclass
class Launch:
    """How the recorded kernel was launched, as far as the log says."""

    extra_arguments: list[str]  # beyond the kernelspec's argv (nbclient's hist_file...)
    cwd: str | None  # the kernel's working directory (None: the log does not say)


def recorded_launch(session: Session) -> Launch:
    """The launch of the session's first kernel, from the header (or, for logs written
    before the header recorded it, from the first ``kernel_started`` event)."""
    kernel = session.header.get("kernel") or {}
    first = session.launches[0] if session.launches else {}
    extra = kernel.get("extra_arguments")
    if not isinstance(extra, list):
        spec_argv, argv = kernel.get("argv"), first.get("argv")
        extra = []
        if isinstance(spec_argv, list) and spec_argv and isinstance(argv, list):
            extra = argv[len(spec_argv) :]
    cwd = kernel.get("cwd") or first.get("cwd")
    return Launch([str(a) for a in extra], cwd if isinstance(cwd, str) else None)


def _by_time(timeline: list[Exchange | Marker]) -> list[Exchange | Marker]:
    """The timeline with each marker moved before the first request captured after it.

    An event may be logged after a message captured a moment later (the wrapper logs
    the interrupt it forwards while the proxy logs the frontend's next request), and
    capture times lag behind under load, so requests are placed by when the frontend
    sent them (their header's date); the requests keep their log order.
    """
    requests = [i for i in timeline if isinstance(i, Exchange)]
    out: list[Exchange | Marker] = []
    markers = [i for i in timeline if isinstance(i, Marker)]
    pending = list(markers)
    for ex in requests:
        while pending and pending[0].t < _sent(ex.request):
            out.append(pending.pop(0))
        out.append(ex)
    return out + pending


def plan(session: Session) -> list[_Action]:
    """The actions of a replay, in log order, with what each must wait for.

    A request waits for the requests that had completed before it was sent, and is
    sent at its recorded offset after a request that was still running (after it
    started executing, if it had: its busy status). A signal
    interrupt is anchored to what the kernel was doing: into the request it hit, at
    the same offset after that request started executing; or, between requests
    (jupyter_client's ``shutdown_kernel()`` interrupts after the last reply), after
    the requests completed before it and before the next one.
    """
    actions: list[_Action] = []
    seen: list[Exchange] = []
    for item in _by_time(session.timeline):
        t = item.t
        completed = [e.number for e in seen if e.done_t is not None and e.done_t <= t]
        if isinstance(item, Marker):
            if item.event == "restart":
                actions.append(_Action("restart", None, [e.number for e in seen]))
                continue
            hit = _interrupted(session, seen, t)
            if hit is None:
                actions.append(_Action("interrupt", None, [e.number for e in seen]))
            else:
                start = max(hit.t, hit.busy_t or hit.t)
                before = [n for n in completed if n != hit.number]
                actions.append(
                    _Action("interrupt", None, before, hit.number, (t - start) / 1e9, busy=True)
                )
            continue
        running = [e for e in seen if e.done_t is None or e.done_t > t]
        anchor = running[0] if running else None
        if anchor is not None and anchor.busy_t is not None and anchor.busy_t <= t:
            # sent while the anchor was executing (a subshell request, a comm message):
            # counted from the replayed anchor's busy, so it finds it executing again
            start = max(anchor.t, anchor.busy_t)
            number = anchor.number
            actions.append(_Action("send", item, completed, number, (t - start) / 1e9, busy=True))
        else:
            offset = (t - anchor.t) / 1e9 if anchor else 0.0
            number = anchor.number if anchor else None
            actions.append(_Action("send", item, completed, number, offset))
        seen.append(item)
    return actions


#: a request that gets no reply counts as hung after HUNG_FACTOR times its recorded
#: duration, and never before HUNG_FLOOR seconds (a loaded machine is slower); --timeout caps it
HUNG_FACTOR = 20.0
HUNG_FLOOR = 10.0


def hung_bound(ex: Exchange, timeout: float) -> float:
    """Seconds without a reply after which replaying ``ex`` counts as hung."""
    return min(timeout, max(HUNG_FLOOR, HUNG_FACTOR * ex.busy_time / 1e9))


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


def _kernel_cwd(launch: Launch, override: str | None) -> tuple[str, list[str]]:
    """The replay kernel's working directory, and what the report says about it."""
    here = os.getcwd()
    if override is not None:
        if not os.path.isdir(override):
            raise KrecError(f"--cwd {override}: no such directory")
        return os.path.abspath(override), []
    if launch.cwd is None:
        return here, [
            "the log does not record the kernel's working directory; "
            f"the kernel ran in the current one ({here})"
        ]
    if not os.path.isdir(launch.cwd):
        return here, [
            f"the recorded working directory {launch.cwd} does not exist here; "
            f"the kernel ran in the current one ({here}) (give --cwd DIR to choose)"
        ]
    return launch.cwd, []


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
    cwd: str | None = None,
    repeat: int = 1,
) -> ReplayResult:
    """Replay ``log_path`` against a fresh kernel and compare; see the module docstring.

    The kernel is launched as the recorded one was (``recorded_launch``): with its extra
    arguments, in its working directory when that exists here; ``cwd`` overrides.
    ``repeat`` > 1 replays that many times (recorded to ``output``, then ``output``
    with ``-2``, ``-3``... before the suffix) and merges the reports (``merge_runs``).
    """
    if repeat < 1:
        raise KrecError("--repeat must be at least 1")
    session = load_session(log_path)
    name = kernel_name or str((session.header.get("kernel") or {}).get("name") or "")
    if not name:
        raise KrecError(f"{log_path} does not name its kernel; give --kernel NAME")
    try:
        entry = find_spec(name)
    except KernelSpecError:
        known = ", ".join(sorted(all_specs())) or "none"
        whose = f"--kernel {name!r}" if kernel_name else f"the log's kernel {name!r}"
        hint = "" if kernel_name else "; pick one with --kernel NAME"
        raise KernelSpecError(f"{whose} is not installed here{hint} (installed: {known})") from None
    if output is None:
        stem = os.path.splitext(os.path.basename(log_path))[0]
        output = os.path.join("krec-logs", f"{stem}-replay-{time.strftime('%Y%m%d-%H%M%S')}.krec")
    launch = recorded_launch(session)
    kernel_cwd, launch_notes = _kernel_cwd(launch, cwd)
    if launch.extra_arguments:
        launch_notes.append(
            "the kernel was started with the recorded extra arguments "
            + " ".join(launch.extra_arguments)
        )
    base, ext = os.path.splitext(output)
    results: list[ReplayResult] = []
    for run in range(1, repeat + 1):
        if cancel is not None and cancel.is_set():
            break
        path = output if run == 1 else f"{base}-{run}{ext or '.krec'}"
        replayer = Replayer(
            session,
            entry,
            path,
            timeout=timeout,
            password=password,
            progress=progress,
            cancel=cancel,
            extra_arguments=launch.extra_arguments,
            cwd=kernel_cwd,
        )
        replayer.notes.extend(launch_notes)
        results.append(_run_and_compare(replayer, session, ignore))
    report = merge_runs([r.report for r in results])
    last = results[-1]
    return ReplayResult(
        last.log,
        report,
        sum(r.wall_time for r in results) / len(results),
        last.busy_time,
        report.notes,
        [r.log for r in results],
    )


def _twins(
    replayer: Replayer, session: Session, replayed: Session
) -> list[tuple[Exchange | None, Exchange | None]]:
    """Each recorded request with the request the replay sent for it (by msg_id: the
    replay's log may hold requests sent on two channels in the same instant in either
    order), then any request of the replay's log that is no one's twin."""
    by_id = {e.msg_id: e for e in replayed.exchanges}
    pairs: list[tuple[Exchange | None, Exchange | None]] = []
    used: set[int] = set()
    for ex in session.exchanges:
        live = replayer.live.get(ex.number)
        twin = by_id.get(live.msg_id) if live is not None else None
        if twin is not None:
            used.add(twin.number)
        pairs.append((ex, twin))
    return pairs + [(None, e) for e in replayed.exchanges if e.number not in used]


def _run_and_compare(replayer: Replayer, session: Session, ignore: Sequence[str]) -> ReplayResult:
    replayer.run()
    with LogReader(replayer.output) as reader:
        replayed = build_session(reader)
    outcomes = replayer.outcomes()
    report = compare_sessions(
        session,
        replayed,
        ignore=ignore,
        pairs=_twins(replayer, session, replayed),
        outcomes_b={
            e.number: outcomes[e.msg_id] for e in replayed.exchanges if e.msg_id in outcomes
        },
    )
    report.notes.extend(replayer.notes)
    wall = max(0.0, replayer.last_done - replayer.first_send)
    return ReplayResult(
        replayer.output, report, wall, session.busy_time / 1e9, replayer.notes, [replayer.output]
    )
