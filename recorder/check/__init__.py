"""`krec check`: find every violation of the Jupyter messaging spec that a recording holds.

A check is one streaming pass over a log. Each rule is a small class (``Rule``)
with an id, a severity, a one-line summary, a help text and the spec section it
enforces; `krec check --list` and docs/check.md are generated from those classes.
The public API is ``run_checks(reader) -> list[Finding]``, ``findings_for(reader)``
(the same, computed once per reader: what the viewer and the ``check:`` filter use)
and ``findings_by_record``; ``Checker`` is the incremental form.
"""

from __future__ import annotations

from krec.recorder.check.base import (
    ERROR,
    SPEC_URL,
    WARNING,
    CheckOptions,
    Deviation,
    Finding,
    Rule,
    findings_by_record,
)
from krec.recorder.check.runner import (
    Checker,
    all_rules,
    check_log,
    findings_for,
    resolve_rule_ids,
    run_checks,
)

__all__ = [
    "ERROR",
    "SPEC_URL",
    "WARNING",
    "CheckOptions",
    "Checker",
    "Deviation",
    "Finding",
    "Rule",
    "all_rules",
    "check_log",
    "findings_by_record",
    "findings_for",
    "resolve_rule_ids",
    "run_checks",
]
