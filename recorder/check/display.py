"""Display rule: update_display_data only for a display_id that was displayed before."""

from __future__ import annotations

from krec.recorder.check.base import PARTIAL, Rule
from krec.recorder.check.messages import Msg
from krec.recorder.check.model import Context


class DisplayId(Rule):
    id = "display-id"
    family = "display"
    summary = "update_display_data names a display_id that a display_data showed before"
    help = (
        "'When a display_id is specified for a display, it can be updated later with an "
        "update_display_data message.' An update for an id no display_data or "
        "execute_result (in its `transient`) introduced updates nothing. Ids outlive a "
        "restart: the frontend still shows those outputs."
    )
    spec = "update-display-data"
    msg_types = frozenset({"display_data", "execute_result", "update_display_data"})

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.shown: set[str] = set()

    def message(self, msg: Msg) -> None:
        transient = msg.content.get("transient")
        if not isinstance(transient, dict):
            return
        display_id = transient.get("display_id")
        if not isinstance(display_id, str):
            return
        if msg.msg_type != "update_display_data":
            self.shown.add(display_id)
        elif display_id not in self.shown:
            text = f"update_display_data for display_id {display_id!r}, never displayed"
            if self.ctx.partial:
                self.report(msg, text + PARTIAL, severity="warning")
            else:
                self.report(msg, text)


RULES = [DisplayId]
