"""The content rule: every message's content against its msg_type's schema (schemas.py)."""

from __future__ import annotations

from typing import Any

from krec.recorder.check.base import Rule
from krec.recorder.check.messages import Msg
from krec.recorder.check.model import Context
from krec.recorder.check.schemas import REPLIES_WITH_STATUS, check_content, known_types

_UNSEEN: Any = object()


class ContentSchema(Rule):
    id = "content-schema"
    alone = True
    family = "content"
    summary = "content fits the schema of its msg_type (jupyter_kernel_test's, completed)"
    help = (
        "Requests, replies and iopub messages are validated against the msgspec_v5 schemas "
        "of jupyter_kernel_test, corrected and completed by krec (see the schema notes "
        "below). A reply is checked in its `ok` form; `status: error` replies are the "
        "`error-reply` rule's, `aborted` ones the `deprecated` rule's; any other status is "
        "reported here. For protocol 5.0 and 5.1, unknown content fields are errors too "
        "(newer versions allow them). Types without a schema are not judged."
    )
    spec = "content"
    msg_types = known_types()
    reads_all_content = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.verdicts: dict[tuple[str, bool, bytes], Any] = {}

    def message(self, msg: Msg) -> None:
        if msg.problems and any(frame == "content" for frame, _ in msg.problems):
            return  # `frames` said it
        c = msg.content
        mt = msg.msg_type
        if mt in REPLIES_WITH_STATUS:
            status = c.get("status")
            if status in ("error", "aborted"):
                return
            if status != "ok":
                what = "no status" if status is None else f"status {status!r}"
                self.report(msg, f"{what}: a reply's status is ok, error or aborted")
                return
        strict = msg.minor is not None and msg.minor <= 1
        key = msg.content_key
        if key is None:
            why = check_content(mt, c, strict)
        else:  # small contents repeat: judge each once
            cache = self.verdicts
            why = cache.get((mt, strict, key), _UNSEEN)
            if why is _UNSEEN:
                why = check_content(mt, c, strict)
                if len(cache) >= 4096:
                    cache.clear()
                cache[(mt, strict, key)] = why
        if why is not None:
            self.report(msg, f"{mt}: {why}")


RULES = [ContentSchema]
