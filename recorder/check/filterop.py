"""The ``check:`` filter operator: records with findings of `krec check` (check:*, check:RULE)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from krec.recorder.check.runner import findings_for, resolve_rule_ids
from krec.recorder.errors import KrecError
from krec.recorder.filter import Fields, Operator, Predicate, register

if TYPE_CHECKING:
    from krec.recorder.log.reader import LogReader

_SEVERITIES = ("error", "warning")


@register
class Check(Operator):
    name = "check"
    syntax = "check:RULE"
    help = (
        "records with a `krec check` finding: check:* (any), check:comm-unknown, "
        "check:comms (a family), check:status-*, check:error, check:warning"
    )
    cost = 1

    def check(self, value: str) -> str:
        value = super().check(value)
        if value not in _SEVERITIES:
            try:
                resolve_rule_ids([value])
            except KrecError as e:
                raise ValueError(f"check: {e}") from None
        return value

    def prepare(self, reader: LogReader) -> None:
        value = self.value
        wanted = None if value in _SEVERITIES else {r.id for r in resolve_rule_ids([value])}
        self.indices = frozenset(
            f.index
            for f in findings_for(reader)
            if (f.severity == value if wanted is None else f.rule in wanted)
        )

    def compile(self, fields: Fields) -> Predicate:
        indices = getattr(self, "indices", None)
        if indices is None:
            raise RuntimeError("check: needs the log: call Filter.prepare(reader) first")
        return lambda i, d: i in indices

    def _key(self) -> tuple[Any, ...]:
        return (self.value,)
