"""The plan of a replay: from a recorded session, what to send when, and what to wait for.

Each client request on shell and control becomes an action that waits for the
requests that had completed before it was originally sent, or that is sent at its
recorded offset after a request still running (counted from when that one started
executing, if it had); signal interrupts are anchored to what the kernel was doing,
restarts stand where the log has them. ``hung_bound`` says how long a replayed
request may go without a reply, from its recorded duration.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from krec.recorder.log.exchange import Exchange, Marker, Session
from krec.recorder.log.record import Record


@dataclass
class Action:
    """One step of the plan: send an exchange again, interrupt, or restart."""

    kind: str  # "send", "interrupt", "restart"
    exchange: Exchange | None
    after: list[int]  # exchange numbers that must be complete first
    anchor: int | None = None  # exchange number this one overlapped with
    offset: float = 0.0  # seconds after the anchor was sent (or started executing: busy)
    busy: bool = False  # offset counts from the anchor's busy status, not from its send


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


def _finished(e: Exchange, t: int) -> bool:
    """Whether ``e`` had completed, or been answered, by log time ``t``.

    The kernel's reply and its iopub messages come through different sockets, so a
    frontend's next request can be logged after the reply it waited for but before the
    idle that, in fact, preceded it.
    """
    return (e.done_t is not None and e.done_t <= t) or (e.reply is not None and e.reply.t <= t)


def _answered(e: Exchange) -> bool:
    """Whether the recorded kernel answered ``e`` at all (a reply, or its idle)."""
    return e.reply is not None or e.done_t is not None


def _by_time(timeline: list[Exchange | Marker]) -> list[Exchange | Marker]:
    """The timeline in the order the frontend sent its requests, each marker before the
    first request sent after it.

    Each channel reaches the capture thread through its own socket, taken in turns, so
    under load a control request (jupyter_client's shutdown_request after the last
    cell) can be logged before shell requests sent earlier. An event may be logged
    after a message captured a moment later (the wrapper logs the interrupt it forwards
    while the proxy logs the frontend's next request). So requests are placed by when
    the frontend sent them (their header's date; log order among equal dates).
    """
    requests = sorted((i for i in timeline if isinstance(i, Exchange)), key=_request_sent)
    out: list[Exchange | Marker] = []
    markers = [i for i in timeline if isinstance(i, Marker)]
    pending = list(markers)
    for ex in requests:
        while pending and pending[0].t < _sent(ex.request):
            out.append(pending.pop(0))
        out.append(ex)
    return out + pending


def _request_sent(ex: Exchange) -> int:
    return _sent(ex.request)


def plan(session: Session) -> list[Action]:
    """The actions of a replay, in the order the frontend sent its requests (``_by_time``),
    with what each must wait for.

    A request waits for the requests that had completed before it was sent, and is
    sent at its recorded offset after a request that was still running (after it
    started executing, if it had: its busy status). A signal
    interrupt is anchored to what the kernel was doing: into the request it hit, at
    the same offset after that request started executing; or, between requests
    (jupyter_client's ``shutdown_kernel()`` interrupts after the last reply), after
    the requests completed before it and before the next one. A shutdown_request
    waits for every request the recorded kernel answered, whenever it answered it.
    """
    actions: list[Action] = []
    seen: list[Exchange] = []
    latest = 0  # a request moved after others (by its date) counts as captured after them
    for item in _by_time(session.timeline):
        t = item.t
        if isinstance(item, Exchange):
            t = latest = max(t, latest)
        completed = [e.number for e in seen if _finished(e, t)]
        if isinstance(item, Marker):
            if item.event == "restart":
                actions.append(Action("restart", None, [e.number for e in seen]))
                continue
            hit = _interrupted(session, seen, t)
            if hit is None:
                actions.append(Action("interrupt", None, [e.number for e in seen]))
            else:
                start = max(hit.t, hit.busy_t or hit.t)
                before = [n for n in completed if n != hit.number]
                actions.append(
                    Action("interrupt", None, before, hit.number, (t - start) / 1e9, busy=True)
                )
            continue
        if item.msg_type == "shutdown_request":
            # the kernel handles shell messages still queued when a shutdown arrives, or
            # not, as its threads race: the replay sends the shutdown once every request
            # the recorded kernel answered has been answered (a comm_msg sent just before
            # jupyter_client's shutdown, say), and so reproduces what the frontend saw
            after = [e.number for e in seen if _finished(e, t) or _answered(e)]
            actions.append(Action("send", item, after))
            seen.append(item)
            continue
        running = [e for e in seen if not _finished(e, t)]
        anchor = running[0] if running else None
        if anchor is not None and anchor.busy_t is not None and anchor.busy_t <= t:
            # sent while the anchor was executing (a subshell request, a comm message):
            # counted from the replayed anchor's busy, so it finds it executing again
            start = max(anchor.t, anchor.busy_t)
            number = anchor.number
            actions.append(Action("send", item, completed, number, (t - start) / 1e9, busy=True))
        else:
            offset = (t - anchor.t) / 1e9 if anchor else 0.0
            number = anchor.number if anchor else None
            actions.append(Action("send", item, completed, number, offset))
        seen.append(item)
    return actions


#: a request that gets no reply counts as hung after HUNG_FACTOR times its recorded
#: duration, and never before HUNG_FLOOR seconds (a loaded machine is slower); --timeout caps it
HUNG_FACTOR = 20.0
HUNG_FLOOR = 10.0


def hung_bound(ex: Exchange, timeout: float) -> float:
    """Seconds without a reply after which replaying ``ex`` counts as hung."""
    return min(timeout, max(HUNG_FLOOR, HUNG_FACTOR * ex.busy_time / 1e9))
