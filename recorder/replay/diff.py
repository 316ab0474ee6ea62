"""Compare two sessions request by request: pairing, divergences, and the report.

Each request of log A is paired with its twin in log B (a replay resends them in
order; two unrelated recordings are aligned with difflib). For each pair the
normalized results (normalize.py) are compared field by field, and every field
that differs is a Divergence. The Report names the first divergence and lists
every request; it renders as text or JSON.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from krec.recorder.log.exchange import Exchange, Marker, Session, load_session
from krec.recorder.replay.normalize import FIELDS, Normalizer, learn_ids, results

# -- pairing and the report ----------------------------------------------------------


@dataclass
class Divergence:
    """One field of one request pair that differs after normalization."""

    request: int  # 1-based position of the request in log A (or B for an extra request)
    msg_type: str
    code: str | None
    field: str
    expected: str
    actual: str
    diff: str
    expected_records: list[int] = field(default_factory=list)
    actual_records: list[int] = field(default_factory=list)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "msg_type": self.msg_type,
            "code": self.code,
            "field": self.field,
            "expected": self.expected,
            "actual": self.actual,
            "diff": self.diff,
            "expected_records": self.expected_records,
            "actual_records": self.actual_records,
            "note": self.note,
        }


@dataclass
class Row:
    """One line of the summary table."""

    request: int
    other: int | None
    msg_type: str
    code: str | None
    fields: list[str]
    status: str  # "same", "diverged", "missing", "extra", "nondeterministic"

    def to_json(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "replayed_as": self.other,
            "msg_type": self.msg_type,
            "code": self.code,
            "status": self.status,
            "fields": self.fields,
        }


@dataclass
class Report:
    """The divergence report between two sessions."""

    log_a: str
    log_b: str
    rows: list[Row]
    divergences: list[Divergence]
    notes: list[str] = field(default_factory=list)
    label_a: str = "recorded"
    label_b: str = "replayed"
    runs: int = 1  # replays merged into this report (--repeat)
    nondeterministic: list[Row] = field(default_factory=list)  # changed between runs

    @property
    def diverged(self) -> bool:
        return bool(self.divergences)

    @property
    def first(self) -> Divergence | None:
        return self.divergences[0] if self.divergences else None

    def to_json(self) -> dict[str, Any]:
        return {
            "log_a": self.log_a,
            "log_b": self.log_b,
            "requests": len([r for r in self.rows if r.status != "extra"]),
            "diverged": len({d.request for d in self.divergences}),
            "first": self.first.to_json() if self.first else None,
            "notes": self.notes,
            "runs": self.runs,
            "nondeterministic": [r.to_json() for r in self.nondeterministic],
            "rows": [r.to_json() for r in self.rows],
            "divergences": [d.to_json() for d in self.divergences],
        }

    def render(self, color: bool = False) -> str:
        return render_report(self, color)


#: what a report on an audit log says (outputs are compared by kind, not by content)
AUDIT_NOTE = (
    "audit log: outputs were not recorded; compared are the outcomes (status, ename, "
    "evalue, execution order and counts) and the kinds of outputs, not their contents"
)


def _key(ex: Exchange) -> tuple[str, str, str]:
    return (ex.ch, ex.msg_type, ex.code or "")


def pair(
    a: Sequence[Exchange], b: Sequence[Exchange]
) -> list[tuple[Exchange | None, Exchange | None]]:
    """Pair requests in order; where the sequences differ, align them with difflib."""
    keys_a, keys_b = [_key(x) for x in a], [_key(x) for x in b]
    if [k[:2] for k in keys_a] == [k[:2] for k in keys_b]:
        return list(zip(a, b, strict=True))
    pairs: list[tuple[Exchange | None, Exchange | None]] = []
    matcher = difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            pairs.extend(zip(a[i1:i2], b[j1:j2], strict=True))
        elif op == "replace":
            n = min(i2 - i1, j2 - j1)
            pairs.extend(zip(a[i1 : i1 + n], b[j1 : j1 + n], strict=True))
            pairs.extend((x, None) for x in a[i1 + n : i2])
            pairs.extend((None, y) for y in b[j1 + n : j2])
        elif op == "delete":
            pairs.extend((x, None) for x in a[i1:i2])
        else:
            pairs.extend((None, y) for y in b[j1:j2])
    return pairs


def _unified(expected: str, actual: str, a: str, b: str) -> str:
    lines = difflib.unified_diff(expected.splitlines(), actual.splitlines(), a, b, lineterm="", n=2)
    return "\n".join(lines)


def _restarts_before(session: Session) -> dict[int, int]:
    """Exchange number -> how many restarts happened before it."""
    seen, out = 0, {}
    for item in session.timeline:
        if isinstance(item, Marker):
            seen += item.event == "restart"
        else:
            out[item.number] = seen
    return out


def compare_sessions(
    a: Session,
    b: Session,
    *,
    ignore: Sequence[str] = (),
    outcomes_b: dict[int, str] | None = None,
    labels: tuple[str, str] = ("recorded", "replayed"),
    pairs: list[tuple[Exchange | None, Exchange | None]] | None = None,
) -> Report:
    """The divergence report between two loaded sessions (``pairs``: which request of
    ``b`` is the twin of which request of ``a``, when known; default: ``pair``)."""
    norm_a, norm_b = Normalizer(ignore), Normalizer(ignore)
    restarts_a, restarts_b = _restarts_before(a), _restarts_before(b)
    segment_a = segment_b = 0
    rows: list[Row] = []
    divergences: list[Divergence] = []
    if pairs is None:
        pairs = pair(a.exchanges, b.exchanges)
    for ea, eb in pairs:
        if ea is not None and eb is not None:
            norm_a.request(ea.msg_id, f"<request-{ea.number}>")
            norm_b.request(eb.msg_id, f"<request-{ea.number}>")
    for ea, eb in pairs:
        if ea is not None and restarts_a.get(ea.number, 0) != segment_a:
            segment_a = restarts_a[ea.number]
            norm_a.new_kernel()
        if eb is not None and restarts_b.get(eb.number, 0) != segment_b:
            segment_b = restarts_b[eb.number]
            norm_b.new_kernel()
        for ex, norm in ((ea, norm_a), (eb, norm_b)):
            if ex is not None:
                learn_ids(ex, norm)
        ref = ea or eb
        assert ref is not None
        number = ref.number
        if ea is None or eb is None:
            status = "missing" if eb is None else "extra"
            text = f"{ref.msg_type} {ref.code or ''}".strip()
            divergences.append(
                Divergence(
                    number,
                    ref.msg_type,
                    ref.code,
                    "request",
                    text if ea else "",
                    text if eb else "",
                    _unified(text if ea else "", text if eb else "", labels[0], labels[1]),
                    ea.records if ea else [],
                    eb.records if eb else [],
                    note=f"request only in the {labels[0] if ea else labels[1]} log",
                )
            )
            rows.append(Row(number, None, ref.msg_type, ref.code, ["request"], status))
            continue
        ra = results(ea, norm_a)
        rb = results(eb, norm_b, (outcomes_b or {}).get(eb.number, ""))
        differing = [f for f in FIELDS if ra[f] != rb[f]]
        if ea.msg_type != eb.msg_type:
            differing.insert(0, "request")
        note = ""
        if any(r.parent_id in a.redacted or r.msg_id in a.redacted for r in ea.stdin):
            note = "a password answer was redacted in the recording"
        for name in differing:
            exp = ra.get(name, ea.msg_type)
            act = rb.get(name, eb.msg_type)
            divergences.append(
                Divergence(
                    number,
                    ea.msg_type,
                    ea.code,
                    name,
                    exp,
                    act,
                    _unified(exp, act, f"{labels[0]} #{ea.number}", f"{labels[1]} #{eb.number}"),
                    ea.records,
                    eb.records,
                    note,
                )
            )
        rows.append(
            Row(
                number,
                eb.number,
                ea.msg_type,
                ea.code,
                differing,
                "diverged" if differing else "same",
            )
        )
    report = Report(a.path, b.path, rows, divergences, label_a=labels[0], label_b=labels[1])
    if a.header.get("audit") or b.header.get("audit"):
        report.notes.append(AUDIT_NOTE)
    return report


def merge_runs(reports: Sequence[Report]) -> Report:
    """One report for several replays of the same log (``--repeat``).

    A request whose result is the same in every run keeps its verdict (same, or the
    same divergence every time); a request whose result changed between runs is
    nondeterministic: listed as such, and not counted as a divergence.
    """
    first = reports[0]
    if len(reports) == 1:
        return first

    def signature(report: Report, request: int) -> tuple[Any, ...]:
        return tuple(
            sorted((d.field, d.actual) for d in report.divergences if d.request == request)
        )

    rows: list[Row] = []
    changed: list[Row] = []
    for row in first.rows:
        if row.status == "extra":
            rows.append(row)
            continue
        seen = {signature(r, row.request) for r in reports}
        if len(seen) == 1:
            rows.append(row)
            continue
        fields = sorted({f for sig in seen for f, _ in sig}, key=_field_order)
        merged = Row(row.request, row.other, row.msg_type, row.code, fields, "nondeterministic")
        rows.append(merged)
        changed.append(merged)
    unstable = {r.request for r in changed}
    notes = list(first.notes)
    for report in reports[1:]:
        notes.extend(n for n in report.notes if n not in notes)
    return Report(
        first.log_a,
        first.log_b,
        rows,
        [d for d in first.divergences if d.request not in unstable],
        notes,
        first.label_a,
        first.label_b,
        runs=len(reports),
        nondeterministic=changed,
    )


def _field_order(name: str) -> int:
    return FIELDS.index(name) if name in FIELDS else -1


def compare(log_a: str, log_b: str, *, ignore: Sequence[str] = ()) -> Report:
    """`krec diff`: the report between two existing logs."""
    report = compare_sessions(
        load_session(log_a), load_session(log_b), ignore=ignore, labels=("a", "b")
    )
    return report


# -- rendering --------------------------------------------------------------------------

_RED, _GREEN, _BOLD, _DIM, _RESET = "\x1b[31m", "\x1b[32m", "\x1b[1m", "\x1b[2m", "\x1b[0m"


def _preview(code: str | None, width: int = 40) -> str:
    if not code:
        return "-"
    line = code.strip().replace("\n", " ⏎ ")
    return line if len(line) <= width else line[: width - 1] + "…"


def render_report(report: Report, color: bool = False) -> str:
    def c(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    out: list[str] = []
    requests = [r for r in report.rows if r.status != "extra"]
    bad = sorted({d.request for d in report.divergences})
    runs = f" in {report.runs} replays" if report.runs > 1 else ""
    if report.nondeterministic:
        changed = len(report.nondeterministic)
        runs += f", {changed} nondeterministic (their results changed between replays)"
    if not bad:
        same = "all the same" if not report.nondeterministic else "the others the same"
        out.append(
            c(f"no divergence: {len(requests)} requests{runs}, {same} after normalization", _GREEN)
        )
    else:
        out.append(
            c(
                f"{len(bad)} of {len(requests)} requests diverged{runs} "
                f"(first at request {bad[0]})",
                _RED + _BOLD,
            )
        )
    out.extend(f"note: {n}" for n in report.notes)
    first = report.first
    if first is not None:
        out.append("")
        out.append(
            c(
                f"first divergence: request {first.request} ({first.msg_type}), "
                f"{first.field} differs",
                _BOLD,
            )
        )
        if first.code is not None:
            out.append("code:")
            out.extend(f"    {line}" for line in first.code.splitlines() or [""])
        if first.note:
            out.append(f"note: {first.note}")
        out.append(f"expected ({report.label_a}):")
        out.extend(f"    {line}" for line in (first.expected or "(nothing)").splitlines())
        out.append(f"actual ({report.label_b}):")
        out.extend(f"    {line}" for line in (first.actual or "(nothing)").splitlines())
        if first.diff:
            out.append("diff:")
            for line in first.diff.splitlines():
                if line.startswith("-") and not line.startswith("---"):
                    line = c(line, _RED)
                elif line.startswith("+") and not line.startswith("+++"):
                    line = c(line, _GREEN)
                out.append(f"    {line}")
    out.append("")
    out.append(f"{'#':>4}  {'request':<22} {'code':<42} result")
    for row in report.rows:
        if row.status == "same":
            result = c("same", _DIM)
        elif row.status in ("missing", "extra"):
            result = c(row.status, _RED)
        elif row.status == "nondeterministic":
            result = "nondeterministic: " + ", ".join(row.fields)
        else:
            result = c("differs: " + ", ".join(row.fields), _RED)
        out.append(f"{row.request:>4}  {row.msg_type:<22} {_preview(row.code):<42} {result}")
    return "\n".join(out)
