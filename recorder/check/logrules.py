"""Log rules: what krec itself noticed while recording (malformed messages, lost records)."""

from __future__ import annotations

from typing import Any

from krec.recorder.check.base import Rule
from krec.recorder.check.messages import At


class BadMessage(Rule):
    id = "bad-message"
    family = "log"
    summary = "no malformed or badly signed message crossed the wire"
    help = (
        "krec forwards every message verbatim but logs a `bad_message` event, instead of "
        "the message, for multipart frames it cannot split (no `<IDS|MSG>` delimiter, too "
        "few frames) and for a client message whose HMAC signature is wrong. The peer "
        "drops such a message silently."
    )
    spec = "the-wire-protocol"
    events = frozenset({"bad_message"})

    def event(self, index: int, t: int, name: str, raw: dict[str, Any]) -> None:
        reason = raw.get("reason")
        ch = raw.get("ch") if isinstance(raw.get("ch"), str) else ""
        source = raw.get("from") if isinstance(raw.get("from"), str) else ""
        where = f" on {ch}" if ch else ""
        who = f" from the {source}" if source else ""
        self.report(
            At(index, t, msg_type=name),
            f"malformed message{where}{who}: {reason if isinstance(reason, str) else '?'}",
        )


class RecordsDropped(Rule):
    id = "records-dropped"
    family = "log"
    severity = "warning"
    summary = "the recording lost no records"
    help = (
        "When the disk refused writes, krec kept forwarding but logged a `records_dropped` "
        "event with the number lost. Findings near it may come from the gap rather than "
        "from the kernel."
    )
    spec = ""
    events = frozenset({"records_dropped"})

    def event(self, index: int, t: int, name: str, raw: dict[str, Any]) -> None:
        count = raw.get("count")
        error = raw.get("error")
        text = f"{count if isinstance(count, int) else 'some'} records were lost"
        if isinstance(error, str) and error:
            text += f" ({error})"
        self.report(At(index, t, msg_type=name), text + "; findings near here may be gaps")


RULES = [BadMessage, RecordsDropped]
