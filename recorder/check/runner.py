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

from krec.recorder.check.base import CheckOptions, Finding, Rule
from krec.recorder.check.messages import Msg
from krec.recorder.check.model import Context, Request
from krec.recorder.errors import KrecError

if TYPE_CHECKING:
    from krec.recorder.log.reader import LogReader

#: rule modules, in the order their families are listed and run
FAMILY_MODULES = (
    "structure",
    "content",
    "replies",
    "iopub",
    "stdin",
    "comms",
    "display",
    "error_replies",
    "timing",
    "logrules",
)

_RULES: list[type[Rule]] | None = None
#: how long (log time) a message waits for its request to be logged (see Checker.feed)
_WAIT_NS = 1_000_000_000
#: at most this many requests waited for at once (a log full of orphans goes on unordered)
_WAIT_GROUPS = 256
_CHANNELS = frozenset({"shell", "control", "stdin", "iopub"})
_SOURCES = frozenset({"client", "kernel", "krec"})


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
        self._looking = [
            r for r in self.rules if _overrides(r, "message") and not r.problem_messages
        ]
        self._problems = [r.message for r in self.rules if r.problem_messages]
        self._broken = [r.message for r in self.rules if r.broken_messages]
        self._dispatch: dict[tuple[str, str, str], list[Callable[[Msg], None]]] = {}
        self._events: dict[str, list[Rule]] = {}
        for r in self.rules:
            for name in r.events:
                self._events.setdefault(name, []).append(r)
        self._done = [r.request_done for r in self.rules if _overrides(r, "request_done")]
        self._restart = [r.restart for r in self.rules if _overrides(r, "restart")]
        self.ctx.on_done = self._request_done
        self.ctx.parser.eager_content = any(r.reads_all_content for r in self.rules)
        self._finished: list[Finding] | None = None
        #: messages waiting for their request, by its msg_id (see ``feed``)
        self._waiting: dict[str, list[Msg]] = {}
        #: (time, parent msg_id) of each waiting group, oldest first
        self._expiry: deque[tuple[int, str]] = deque()

    def _handlers(self, key: tuple[str, str, str]) -> list[Callable[[Msg], None]]:
        """The ``message`` methods of the rules for a (channel, sender, msg_type)."""
        handlers = self._dispatch.get(key)
        if handlers is None:
            handlers = [r.message for r in self._looking if r.applies(*key)]
            if len(self._dispatch) < 4096:  # a few hundred in practice; odd logs hold more
                self._dispatch[key] = handlers
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

        krec captured each channel in its own thread, so older logs sometimes hold a
        client request after the first iopub messages the kernel published for it.
        An iopub or stdin message whose parent is no request seen yet waits (up to a
        second of log time); when its request comes, it is checked right after it,
        so the rules see cause before effect. If none comes, it is checked as it is.
        """
        ctx = self.ctx
        ctx.records += 1
        t = raw.get("t")
        if t.__class__ is not int:
            t = 0
        if ctx.first_t is None:
            ctx.first_t = t
        expiry = self._expiry
        if expiry and expiry[0][0] < t - _WAIT_NS:
            self._release_expired(t - _WAIT_NS)
        if "event" in raw:
            self._event(index, t, raw)
            return
        msg = ctx.message(index, raw)
        pid = msg.parent_id
        if pid and msg.source == "kernel" and (msg.ch == "iopub" or msg.ch == "stdin"):
            waiting = self._waiting.get(pid)
            if waiting is not None:
                waiting.append(msg)
                return
            if ctx.lookup(pid) is None and len(self._waiting) < _WAIT_GROUPS:
                self._waiting[pid] = [msg]
                expiry.append((t, pid))
                return
        self._process(msg)
        if msg.source == "client" and self._waiting:
            for late in self._waiting.pop(msg.msg_id, ()):
                self._process(late)

    def judge(self, index: int, raw: dict[str, Any]) -> None:
        """Check one record with rules that judge each message alone (``Rule.alone``):
        no session model, no waiting for requests (what a helper process does)."""
        if "event" in raw:
            return
        msg = self.ctx.message(index, raw)
        if not msg.msg_type or msg.ch not in _CHANNELS or msg.source not in _SOURCES:
            for handler in self._broken:
                handler(msg)
            return
        if msg.problems:
            for handler in self._problems:
                handler(msg)
        for handler in self._handlers((msg.ch, msg.source, msg.msg_type)):
            handler(msg)

    def _release_expired(self, horizon: int) -> None:
        expiry = self._expiry
        while expiry and expiry[0][0] < horizon:
            _, pid = expiry.popleft()
            for msg in self._waiting.pop(pid, ()):
                self._process(msg)

    def _process(self, msg: Msg) -> None:
        ctx = self.ctx
        if not msg.msg_type or msg.ch not in _CHANNELS or msg.source not in _SOURCES:
            for handler in self._broken:
                handler(msg)
            if msg.t > ctx.last_t:
                ctx.last_t = msg.t
            return
        if msg.problems:
            for handler in self._problems:
                handler(msg)
        ctx.before(msg)
        for handler in self._handlers((msg.ch, msg.source, msg.msg_type)):
            handler(msg)
        ctx.after(msg)
        if (
            msg.msg_type == "status"
            and msg.ch == "iopub"
            and msg.content.get("execution_state") == "starting"
        ):
            self.restart()

    def _event(self, index: int, t: int, raw: dict[str, Any]) -> None:
        ctx = self.ctx
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
        """Check the messages still waiting for their request (``finish`` does it)."""
        self._release_expired(1 << 62)

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
    *,
    helper: bool = False,
) -> Checker:
    """Run a whole pass over ``reader``; the finished Checker has ``findings`` and ``protocol``.

    With ``helper``, a big log's rules that judge each message alone run in a second
    process (check/helper.py) while this one runs the others; the findings are the same.
    """
    from krec.recorder.check.helper import AloneHelper, worth_a_helper

    classes = list(rules) if rules is not None else all_rules()
    alone = [c for c in classes if c.alone]
    job = None
    if helper and alone and len(alone) < len(classes) and worth_a_helper(reader):
        job = AloneHelper.start(reader, alone, options)
        if job is not None:
            classes = [c for c in classes if not c.alone]
    checker = Checker(reader.header, classes, options, start_ns=reader.start_ns)
    total = len(reader)
    feed = checker.feed
    try:
        if progress is None:
            for index, raw in reader.raw_records():
                feed(index, raw)
        else:
            for index, raw in reader.raw_records():
                feed(index, raw)
                if not index & 0x3FFF:
                    progress(index, total)
            progress(total, total)
    except BaseException:  # Ctrl-C, an error: the helper must not outlive this pass
        if job is not None:
            job.stop()
        raise
    if job is not None:
        found = job.result()
        if found is None:  # the helper failed: judge here, in a second pass
            judge = Checker(reader.header, alone, options, start_ns=reader.start_ns)
            for index, raw in reader.raw_records():
                judge.judge(index, raw)
            found = judge.ctx.findings
        checker.ctx.findings.extend(found)
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


def summary_line(summary: dict[str, Any]) -> str:
    """The last line of `krec check`'s text report: findings, records, rules, protocol."""

    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    versions = ", ".join(f"{k} {v}" for k, v in summary["protocol"].items() if v)
    found = (
        f"{plural(summary['errors'], 'error')}, {plural(summary['warnings'], 'warning')}"
        if summary["errors"] or summary["warnings"]
        else "no findings"
    )
    text = (
        f"{found} in {plural(summary['records'], 'record')} "
        f"({plural(len(summary['rules']), 'rule')}"
    )
    return text + (f"; protocol: {versions})" if versions else ")")
