"""The check pass: feed records to the session model and the rules, collect sorted findings.

``Checker`` is incremental (``feed`` records in order, then ``finish``); ``run_checks``
runs one over a LogReader. Rules are dispatched by msg_type, so a message only
reaches the rules that look at its type.
"""

from __future__ import annotations

import fnmatch
import importlib
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import KrecError
from .base import CheckOptions, Finding, Rule
from .model import Context, Msg, Request

if TYPE_CHECKING:
    from ..logfile import LogReader

#: rule modules, in the order their families are listed and run
FAMILY_MODULES = (
    "structure",
    "content",
    "replies",
    "iopub",
    "stdin",
    "comms",
    "display",
    "errors",
    "timing",
    "logrules",
)

_RULES: list[type[Rule]] | None = None
#: how long records wait before they are checked (see Checker.feed)
_WINDOW_NS = 1_000_000_000
_WINDOW_RECORDS = 4096


def all_rules() -> list[type[Rule]]:
    """Every rule class, family by family."""
    global _RULES
    if _RULES is None:
        found: list[type[Rule]] = []
        for name in FAMILY_MODULES:
            module = importlib.import_module(f"{__package__}.{name}")
            found.extend(module.RULES)
        ids = [r.id for r in found]
        dupes = {i for i in ids if ids.count(i) > 1}
        if dupes:
            raise RuntimeError(f"duplicate rule ids: {sorted(dupes)}")
        _RULES = found
    return list(_RULES)


def resolve_rule_ids(select: Iterable[str] = (), ignore: Iterable[str] = ()) -> list[type[Rule]]:
    """The rules named by ``select`` (all when empty) minus ``ignore``; ids or glob patterns.

    A family name (e.g. ``comms``) stands for all its rules. Raises KrecError for a
    name that matches nothing.
    """
    rules = all_rules()

    def matching(pattern: str) -> set[str]:
        hits = {r.id for r in rules if fnmatch.fnmatchcase(r.id, pattern) or r.family == pattern}
        if not hits:
            raise KrecError(f"no rule matches {pattern!r} (krec check --list shows them)")
        return hits

    chosen = {r.id for r in rules}
    select = [s for s in select if s]
    if select:
        chosen = set().union(*(matching(s) for s in select))
    for pattern in ignore:
        if pattern:
            chosen -= matching(pattern)
    return [r for r in rules if r.id in chosen]


def _overrides(rule: Rule, name: str) -> bool:
    return getattr(type(rule), name) is not getattr(Rule, name)


class Checker:
    """One check pass over records fed in log order; ``finish`` returns the findings."""

    def __init__(
        self,
        header: dict[str, Any] | None = None,
        rules: Sequence[type[Rule]] | None = None,
        options: CheckOptions | None = None,
        *,
        start_ns: int | None = None,
    ) -> None:
        self.ctx = Context(header, options, start_ns)
        classes = list(rules) if rules is not None else all_rules()
        self._order = {cls.id: n for n, cls in enumerate(all_rules())}
        self.rules = [cls(self.ctx) for cls in classes]
        self._every = [
            r.message for r in self.rules if r.msg_types is None and _overrides(r, "message")
        ]
        self._typed = [r for r in self.rules if r.msg_types is not None]
        self._broken = [r.message for r in self.rules if r.broken_messages]
        self._dispatch: dict[str, list[Callable[[Msg], None]]] = {}
        self._events: dict[str, list[Rule]] = {}
        for r in self.rules:
            for name in r.events:
                self._events.setdefault(name, []).append(r)
        self._done = [r.request_done for r in self.rules if _overrides(r, "request_done")]
        self._restart = [r.restart for r in self.rules if _overrides(r, "restart")]
        self.ctx.on_done = self._request_done
        self._finished: list[Finding] | None = None
        #: records waiting to be checked: (index, t, raw, parsed message or None)
        self._window: deque[tuple[int, int, dict[str, Any], Msg | None]] = deque()
        #: unknown parent msg_id -> index of the first waiting record that names it
        self._children: dict[str, int] = {}
        #: msg_ids of the client requests in the window
        self._waiting: set[str] = set()

    def _handlers(self, msg_type: str) -> list[Callable[[Msg], None]]:
        handlers = self._dispatch.get(msg_type)
        if handlers is None:
            handlers = list(self._every)
            handlers.extend(
                r.message for r in self._typed if r.msg_types and msg_type in r.msg_types
            )
            if len(self._dispatch) < 4096:  # msg_types are few; odd logs may hold many
                self._dispatch[msg_type] = handlers
        return handlers

    def _request_done(self, req: Request, at_end: bool) -> None:
        for hook in self._done:
            hook(req, at_end)

    def restart(self) -> None:
        """A new kernel process took over the session (restart event or ``status: starting``)."""
        for hook in self._restart:
            hook()

    def feed(self, index: int, raw: dict[str, Any]) -> None:
        """Check one record (the msgpack map of a log record), fed in log order.

        Records wait in a short window first: krec captures each channel in its own
        thread, so a client request is sometimes logged after the first iopub messages
        the kernel published for it. Such a request is moved back before them, so the
        rules see cause before effect.
        """
        ctx = self.ctx
        ctx.records += 1
        t = raw.get("t")
        t = t if isinstance(t, int) else 0
        if ctx.first_t is None:
            ctx.first_t = t
        buf = self._window
        if "event" in raw:
            buf.append((index, t, raw, None))
        else:
            msg = ctx.message(index, raw)
            children = self._children
            if msg.source == "client" and msg.ch in ("shell", "control") and msg.msg_id:
                self._waiting.add(msg.msg_id)
                child = children.pop(msg.msg_id, None)
                if child is not None:
                    pos = next(i for i, item in enumerate(buf) if item[0] == child)
                    buf.insert(pos, (index, t, raw, msg))
                else:
                    buf.append((index, t, raw, msg))
            else:
                pid = msg.parent_id
                if (
                    pid
                    and msg.source == "kernel"
                    and pid not in children
                    and pid not in self._waiting
                    and ctx.lookup(pid) is None
                ):
                    children[pid] = index
                buf.append((index, t, raw, msg))
        horizon = t - _WINDOW_NS
        while buf and (len(buf) > _WINDOW_RECORDS or buf[0][1] < horizon):
            self._process(*buf.popleft())

    def _process(self, index: int, t: int, raw: dict[str, Any], msg: Msg | None) -> None:
        ctx = self.ctx
        if msg is not None:
            if self._children.get(msg.parent_id) == index:
                del self._children[msg.parent_id]
            if msg.source == "client":
                self._waiting.discard(msg.msg_id)
            if msg.broken or msg.ch not in ("shell", "control", "stdin", "iopub"):
                for handler in self._broken:
                    handler(msg)
                ctx.last_t = max(ctx.last_t, msg.t)
                return
            ctx.before(msg)
            for handler in self._handlers(msg.msg_type):
                handler(msg)
            ctx.after(msg)
            if (
                msg.msg_type == "status"
                and msg.ch == "iopub"
                and msg.content.get("execution_state") == "starting"
            ):
                self.restart()
            return
        name = raw.get("event")
        if not isinstance(name, str):
            name = ""
        ctx.last_t = max(ctx.last_t, t)
        if name == "interrupt":
            ctx.last_interrupt_index = index
            ctx.last_interrupt_t = t
        for rule in self._events.get(name, ()):
            rule.event(index, t, name, raw)
        if name in ("restart", "kernel_started"):
            ctx.kernel_started()
        if name == "restart":
            self.restart()

    def flush(self) -> None:
        """Check every record still waiting in the window (``finish`` does it)."""
        buf = self._window
        while buf:
            self._process(*buf.popleft())

    @property
    def findings(self) -> list[Finding]:
        """The findings so far (all of them, sorted, once ``finish`` was called)."""
        return self._finished if self._finished is not None else list(self.ctx.findings)

    def protocol(self) -> dict[str, str | None]:
        """Messaging versions seen: the client's first request, kernel_info_reply, kernelspec."""
        kernel = self.ctx.header.get("kernel")
        spec = kernel.get("protocol_version") if isinstance(kernel, dict) else None
        return {
            "client": self.ctx.client_version,
            "kernel": self.ctx.kernel_version,
            "kernelspec": spec if isinstance(spec, str) else None,
        }

    def finish(self) -> list[Finding]:
        """End of the log: end-of-log rules run; findings sorted by record, then rule."""
        if self._finished is None:
            self.flush()
            self.ctx.finish()
            for rule in self.rules:
                rule.finish()
            order = self._order
            self._finished = sorted(
                self.ctx.findings, key=lambda f: (f.index, order.get(f.rule, 0), f.text)
            )
        return self._finished


def check_log(
    reader: LogReader,
    rules: Sequence[type[Rule]] | None = None,
    options: CheckOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Checker:
    """Run a whole pass over ``reader``; the finished Checker has ``findings`` and ``protocol``."""
    checker = Checker(reader.header, rules, options, start_ns=reader.start_ns)
    total = len(reader)
    feed = checker.feed
    if progress is None:
        for index, raw in reader.raw_records():
            feed(index, raw)
    else:
        for index, raw in reader.raw_records():
            feed(index, raw)
            if not index & 0x3FFF:
                progress(index, total)
        progress(total, total)
    checker.finish()
    return checker


def run_checks(
    reader: LogReader,
    rules: Sequence[type[Rule]] | None = None,
    options: CheckOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Finding]:
    """Check every record of ``reader``; return the findings sorted by record index.

    ``rules`` defaults to every rule (``resolve_rule_ids`` chooses them by id);
    ``progress(done, total)`` is called now and then.
    """
    return check_log(reader, rules, options, progress).finish()


_CACHE: weakref.WeakKeyDictionary[Any, tuple[int, int, list[Finding]]] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def findings_for(reader: LogReader) -> list[Finding]:
    """All findings of ``reader`` with the default rules, computed once per reader.

    What the viewer and the ``check:`` filter share: the pass runs again only when
    the log has grown since (a live log). Thread-safe; the list must not be changed.
    """
    key = (len(reader), reader.start_ns)
    with _CACHE_LOCK:
        cached = _CACHE.get(reader)
        if cached is not None and cached[:2] == key:
            return cached[2]
        findings = run_checks(reader)
        _CACHE[reader] = (*key, findings)
        return findings
