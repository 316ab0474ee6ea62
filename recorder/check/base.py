"""The pieces every rule shares: Finding, the Rule base class, options and known deviations."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from krec.recorder.check.messages import At, Msg
    from krec.recorder.check.model import Context, Request

ERROR = "error"
WARNING = "warning"
SPEC_URL = "https://jupyter-client.readthedocs.io/en/latest/messaging.html"
#: appended to findings that may only mean the recording started mid-session (--existing)
PARTIAL = " (the recording attached to a running kernel: this may predate it)"
#: ``Rule.where`` values
KERNEL_REPLIES = frozenset({("shell", "kernel"), ("control", "kernel")})
CLIENT_REQUESTS = frozenset({("shell", "client"), ("control", "client")})
KERNEL_IOPUB = frozenset({("iopub", "kernel")})


def spec_link(anchor: str) -> str:
    """The URL of a section of the messaging spec (``anchor`` as Sphinx renders it)."""
    return f"{SPEC_URL}#{anchor}" if anchor else SPEC_URL


@dataclass(slots=True)
class Finding:
    """One violation: which rule, where in the log, what is wrong and which spec section says so.

    ``index`` is the record position in the log (as in ``krec show``); ``rel`` is seconds
    since the log was created; ``related`` lists other records involved (e.g. the request).
    """

    rule: str
    severity: str
    index: int
    t: int
    rel: float
    ch: str
    source: str
    msg_type: str
    msg_id: str
    text: str
    spec: str
    related: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "index": self.index,
            "t": self.t,
            "rel": round(self.rel, 6),
            "ch": self.ch,
            "from": self.source,
            "msg_type": self.msg_type,
            "msg_id": self.msg_id,
            "text": self.text,
            "spec": self.spec,
            "related": list(self.related),
        }

    def line(self) -> str:
        """The one-line text form `krec check` prints."""
        where = f"{self.ch}/{self.source}" if self.ch else "event"
        return (
            f"#{self.index:<6} +{self.rel:.3f}s  {where}  {self.msg_type or '-'}  "
            f"{self.severity} {self.rule}: {self.text}  <{self.spec}>"
        )


def findings_by_record(findings: Iterable[Finding]) -> dict[int, list[Finding]]:
    """Findings grouped by the record index they point at (what a viewer marks)."""
    out: dict[int, list[Finding]] = {}
    for f in findings:
        out.setdefault(f.index, []).append(f)
    return out


@dataclass(frozen=True, slots=True)
class Deviation:
    """A known, harmless way a real implementation departs from a rule, and why it is harmless.

    Findings it causes are reported as warnings whose text names it; docs/check.md lists it.
    """

    who: str
    what: str
    why: str


@dataclass(slots=True)
class CheckOptions:
    """Thresholds of the timing rules (seconds)."""

    kernel_info_timeout: float = 10.0
    #: a request that got its reply but no ``status: idle`` is reported only when the
    #: log goes on this long after the reply (or the kernel publishes another status)
    idle_grace: float = 1.0


class Rule:
    """One rule: a class with its id, severity, summary, help and spec section.

    The runner makes one instance per check pass and calls ``message`` for every
    message whose type is in ``msg_types`` and whose (channel, sender) is in
    ``where`` (None: any),
    ``event`` for the event names in ``events``, ``request_done`` when the session
    model retires a request (its reply and idle seen, or the log ended), ``restart``
    when a new kernel takes over, and ``finish`` at the end. Rules read the shared
    session model (``self.ctx``) as it was *before* the current message, and report
    with ``self.report``.
    """

    id: ClassVar[str] = ""
    family: ClassVar[str] = ""
    severity: ClassVar[str] = ERROR
    summary: ClassVar[str] = ""
    help: ClassVar[str] = ""
    spec: ClassVar[str] = ""  # anchor in the messaging spec
    msg_types: ClassVar[frozenset[str] | None] = None
    #: the (channel, sender) pairs of the messages it looks at (None: all)
    where: ClassVar[frozenset[tuple[str, str]] | None] = None
    events: ClassVar[frozenset[str]] = frozenset()
    #: also called for messages whose header is unusable (only structure rules)
    broken_messages: ClassVar[bool] = False
    #: called only for messages with an unusable frame (msg.problems), not by type
    problem_messages: ClassVar[bool] = False
    #: reads the content of (nearly) every message: contents are parsed as they are read
    reads_all_content: ClassVar[bool] = False
    #: judges each message by itself (no session model, no order, no events, no finish):
    #: on a big log a helper process runs such rules while this one runs the others
    alone: ClassVar[bool] = False
    deviations: ClassVar[tuple[Deviation, ...]] = ()

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- hooks (override what the rule needs) --
    def message(self, msg: Msg) -> None:  # pragma: no cover - overridden
        pass

    def event(self, index: int, t: int, name: str, raw: dict[str, Any]) -> None:
        pass

    def request_done(self, req: Request, at_end: bool) -> None:
        pass

    def restart(self) -> None:
        pass

    def finish(self) -> None:
        pass

    # -- reporting --
    def report(
        self,
        where: Msg | Request | At,
        text: str,
        *,
        related: Iterable[int] = (),
        severity: str | None = None,
        deviation: Deviation | None = None,
    ) -> None:
        """Record a finding at a message, at a request's record, or at another place (``At``)."""
        if deviation is not None:
            severity = WARNING
            text = f"{text} (known {deviation.who} behaviour, see docs/check.md)"
        self.ctx.add(
            self,
            where,
            text,
            tuple(related),
            severity or self.severity,
        )

    @classmethod
    def applies(cls, ch: str, source: str, msg_type: str) -> bool:
        """Does ``message`` want messages of this channel, sender and type? The runner
        asks once per combination, so a rule whose verdict depends only on them can
        decide here and never be called for the rest."""
        return (cls.msg_types is None or msg_type in cls.msg_types) and (
            cls.where is None or (ch, source) in cls.where
        )

    @classmethod
    def spec_url(cls) -> str:
        return spec_link(cls.spec)
