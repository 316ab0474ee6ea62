"""`krec export`: a log as JSON lines of decoded messages, a rebuilt notebook, or a pytest test.

``--to jsonl`` writes one decoded record per line (the same objects as
``krec show --json``); ``--to ipynb`` rebuilds the session's notebook (see
notebook.py) and checks it with nbformat's validator before writing it.
``--redact PATTERN`` replaces every match of a regular expression in the
exported strings with a marker, so a log can be shared without its secrets.
``--to pytest`` writes a regression test that replays the log (see regression.py).
``--to otlp`` writes the session's spans as OTLP JSON, the same spans ``--otlp`` exports
live (see otel.py, otlp.py and docs/otel.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

from krec.recorder.cli.util import Progress, add_command
from krec.recorder.errors import KrecError

if TYPE_CHECKING:
    from krec.recorder.filter import Filter
    from krec.recorder.logfile import LogReader, Record

REDACTED = "[REDACTED]"
EXAMPLES = """\
examples:
  krec export session.krec --to ipynb -o session.ipynb      the notebook of the session
  krec export session.krec --to jsonl -f 'ch:iopub' | jq -c .content
  krec export session.krec -o share.jsonl --redact 'sk-[A-Za-z0-9]+' --redact '/home/\\w+'
  krec export session.krec --to ipynb -f 't>10m' -o late.ipynb   cells run after 10 minutes
  krec export session.krec --to pytest -o test_session.py   a regression test replaying it
  krec export session.krec --to otlp -o spans.json          OpenTelemetry spans, OTLP JSON

With --to ipynb the filter selects cells (execute_requests); their outputs follow them.
With --to otlp it selects requests: one span each; --redact applies to span attributes.
Without --to, the format is taken from the -o file name (.ipynb, .jsonl or .py).
"""


def add_arguments(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(
        sub, "export", "export a log as JSON lines, a notebook or a regression test", EXAMPLES
    )
    p.add_argument("log", metavar="LOG", help="a .krec log")
    p.add_argument("--to", choices=("jsonl", "ipynb", "pytest", "otlp"), help="output format")
    p.add_argument("-f", "--filter", default="", metavar="FILTER", help="only matching records")
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default: stdout)")
    p.add_argument(
        "--redact",
        action="append",
        default=[],
        metavar="PATTERN",
        help=f"replace matches of this regex with {REDACTED} (repeatable)",
    )
    p.add_argument(
        "--otlp-content",
        action="store_true",
        help="with --to otlp: spans carry code, outputs and error values (never for an audit log)",
    )
    p.set_defaults(func=run)


def redactor(patterns: list[str]) -> Callable[[Any], Any]:
    """A function replacing every match of ``patterns`` in the strings of a JSON value."""
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as e:
            raise KrecError(f"--redact {pattern!r}: bad pattern: {e}") from None

    def redact(value: Any) -> Any:
        if isinstance(value, str):
            for p in compiled:
                value = p.sub(REDACTED, value)
            return value
        if isinstance(value, dict):
            return {k: redact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [redact(v) for v in value]
        return value

    return redact if compiled else (lambda value: value)


def _format(args: argparse.Namespace) -> str:
    if args.to:
        return str(args.to)
    suffix = os.path.splitext(args.output or "")[1].lower()
    if suffix in (".ipynb", ".jsonl"):
        return suffix[1:]
    if suffix == ".py":
        return "pytest"
    raise KrecError("give the output format: --to jsonl or --to ipynb (or --to pytest: a test)")


def run(args: argparse.Namespace) -> int:
    from krec.recorder.filter import compile_filter
    from krec.recorder.logfile import LogReader

    fmt = _format(args)
    if getattr(args, "otlp_content", False) and fmt != "otlp":
        raise KrecError("--otlp-content needs --to otlp")
    if fmt == "otlp":
        from krec.recorder.export.otlp import require_sdk

        require_sdk()
    if fmt == "pytest":
        from krec.recorder.export.pytest import export_pytest

        return export_pytest(args)
    redact = redactor(args.redact)
    flt = compile_filter(args.filter)
    with LogReader(args.log, index=False) as reader, _output(args.output) as out:
        with Progress("indexing") as progress:
            while reader.index_more(100_000):
                progress.update(len(reader))
        if fmt == "jsonl":
            out.writelines(_jsonl(reader, flt, redact))
        elif fmt == "otlp":
            out.write(_otlp(reader, flt, redact, args.otlp_content))
        else:
            out.write(_ipynb(reader, flt, redact))
        out.flush()
        for warning in reader.warnings:
            print(f"krec: warning: {reader.path}: {warning}", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[IO[str]]:
    """The output stream, opened before any work so a bad path fails at once."""
    if path is None or path == "-":
        yield sys.stdout
        return
    try:
        out = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as e:
        raise KrecError(f"cannot write {path}: {e.strerror}") from None
    with out:
        yield out


def _matching(reader: LogReader, flt: Filter, label: str) -> Iterator[Record]:
    total = len(reader)
    with Progress(label, total) as progress:
        if flt.matches_all:
            for record in reader.records():
                if record.index % 4096 == 0:
                    progress.update(record.index, total)
                yield record
            return
        hits = flt.scan(reader, progress=lambda done, total: progress.update(done, total))
        for i in hits:
            yield reader[i]


def _jsonl(reader: LogReader, flt: Filter, redact: Callable[[Any], Any]) -> Iterator[str]:
    for record in _matching(reader, flt, "exporting"):
        data = redact(record.to_json(reader.start_ns))
        yield json.dumps(data, ensure_ascii=False) + "\n"


def _ipynb(reader: LogReader, flt: Filter, redact: Callable[[Any], Any]) -> str:
    import nbformat

    from krec.recorder.export.notebook import NotebookBuilder

    selected: set[int] | None = None
    if not flt.matches_all:
        with Progress("filtering") as progress:
            selected = set(flt.scan(reader, progress=progress.update))
    builder = NotebookBuilder(reader.header)
    total = len(reader)
    with Progress("rebuilding the notebook", total) as progress:
        for record in reader.records():
            builder.feed(record, wanted=selected is None or record.index in selected)
            if record.index % 4096 == 0:
                progress.update(record.index, total)
    nb = nbformat.from_dict(redact(builder.notebook()))
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as e:  # a bug in krec, not in the user's input
        raise RuntimeError(f"the rebuilt notebook is not valid: {e.message}") from e
    return nbformat.writes(nb) + "\n"


def _otlp(reader: LogReader, flt: Filter, redact: Callable[[Any], Any], content: bool) -> str:
    from krec.recorder.export.otlp import otlp_json, spans_of_log

    selected: set[int] | None = None
    if not flt.matches_all:
        with Progress("filtering") as progress:
            selected = set(flt.scan(reader, progress=progress.update))
    total = len(reader)

    def records() -> Iterator[Record]:
        with Progress("building spans", total) as progress:
            for record in reader.records():
                if record.index % 4096 == 0:
                    progress.update(record.index, total)
                yield record

    spans = spans_of_log(records(), reader.header, include_content=content)
    if selected is not None:
        spans = [s for s in spans if s.request_index in selected]
    for span in spans:
        span.attributes = redact(span.attributes)
        span.events = [(name, t, redact(attrs)) for name, t, attrs in span.events]
    return json.dumps(otlp_json(spans, reader.header), ensure_ascii=False) + "\n"
