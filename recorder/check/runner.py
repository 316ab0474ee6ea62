"""The check pass: feed records to the session model and the rules, collect sorted findings.

``Checker`` is incremental (``feed`` records in order, then ``finish``); ``run_checks``
runs one over a LogReader. Rules are dispatched by msg_type, so a message only
reaches the rules that look at its type.
"""

from __future__ import annotations

import fnmatch
import importlib
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
            known = ", ".join(r.id for r in rules)
            raise KrecError(f"no rule matches {pattern!r} (known rules: {known})")
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
        """Check one record (the msgpack map of a log record)."""
        ctx = self.ctx
        ctx.records += 1
        t = raw.get("t")
        t = t if isinstance(t, int) else 0
        if ctx.first_t is None:
            ctx.first_t = t
        if "event" not in raw:
            msg = ctx.message(index, raw)
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
        if name == "restart":
            self.restart()

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
