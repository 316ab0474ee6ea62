"""Structure rules: the four JSON frames, the header fields, and each msg_type's channel."""

from __future__ import annotations

import re
from typing import Any

from krec.recorder.check.base import Deviation, Rule
from krec.recorder.check.messages import Msg
from krec.recorder.check.protocol import REPLIES, allowed_places, describe_places

_DATE = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d(:\d\d(\.\d+)?)?([Zz]|[+-]\d\d(:?\d\d)?)\Z")
_VERSION = re.compile(r"(\d+)\.(\d+)(\.\d+)?\Z")
_HEADER_KEYS = ("msg_id", "session", "username", "date", "msg_type", "version")
_CHANNELS = ("shell", "control", "stdin", "iopub")
_SOURCES = ("client", "kernel", "krec")


class Frames(Rule):
    id = "frames"
    alone = True
    family = "structure"
    summary = "header, parent, metadata and content are each a JSON object"
    help = (
        "Every message is four JSON dictionaries (header, parent header, metadata, content) "
        "after the signature. A frame that is not JSON, or is JSON but not an object, cannot "
        "be read by any frontend. Also reported: a log record whose channel or sender is not "
        "one krec knows."
    )
    spec = "general-message-format"
    broken_messages = True
    problem_messages = True
    reads_all_content = True

    def message(self, msg: Msg) -> None:
        problems = [f"the {frame} frame is {what}" for frame, what in msg.problems]
        if msg.ch not in _CHANNELS:
            problems.append(f"unknown channel {msg.ch!r}")
        if msg.source not in _SOURCES:
            problems.append(f"unknown sender {msg.source!r}")
        if problems:
            self.report(msg, "; ".join(problems))


class Header(Rule):
    id = "header"
    alone = True
    family = "structure"
    summary = "header fields present and typed; date is ISO 8601 with a time zone; version 5.x"
    help = (
        "The header must carry msg_id, session, username, msg_type and version as strings, "
        "and date (mandatory since 5.1) as an ISO 8601 timestamp with a time zone; "
        "subshell_id, when present, is a string or null. krec checks messaging 5.x, so "
        "the version must be 5.x. A non-empty parent header is a copy of a header, so it "
        "carries msg_id and msg_type. For 5.0 and 5.1 messages, unknown header keys are "
        "errors too (as in jupyter_kernel_test)."
    )
    spec = "message-header"
    broken_messages = True

    def message(self, msg: Msg) -> None:
        if msg.problems and any(frame == "header" for frame, _ in msg.problems):
            return  # `frames` said it
        h = msg.header
        get = h.get
        date = get("date")
        sub = get("subshell_id")
        if (  # the common case, quickly: a complete 5.2+ header and a sound parent
            msg.major == 5
            and msg.minor is not None
            and msg.minor >= 2
            and msg.msg_id
            and msg.msg_type
            and msg.parent_ok
            and get("session").__class__ is str
            and get("username").__class__ is str
            and date.__class__ is str
            and (sub is None or sub.__class__ is str)
            and _DATE.match(date) is not None
        ):
            return
        self.judge(msg, h)

    def judge(self, msg: Msg, h: dict[str, Any]) -> None:
        problems: list[str] = []
        missing = [k for k in _HEADER_KEYS if k not in h]
        if msg.minor == 0 and "date" in missing:
            missing.remove("date")  # optional before 5.1
        if missing:
            problems.append(f"no {', '.join(missing)}")
        wrong = [k for k in _HEADER_KEYS if k in h and not isinstance(h[k], str)]
        if wrong:
            problems.append(f"{', '.join(wrong)} not a string")
        for key in ("msg_id", "msg_type"):
            if h.get(key) == "":
                problems.append(f"empty {key}")
        date = h.get("date")
        if isinstance(date, str) and not _DATE.match(date):
            problems.append(f"date {date!r} is not ISO 8601 with a time zone")
        version = h.get("version")
        if isinstance(version, str):
            m = _VERSION.match(version)
            if m is None:
                problems.append(f"version {version!r} is not like '5.3'")
            elif m.group(1) != "5":
                problems.append(f"version {version!r}: krec checks messaging 5.x")
            elif msg.minor is not None and msg.minor <= 1:
                extra = sorted(set(h) - set(_HEADER_KEYS))
                if extra:
                    problems.append(f"unknown keys for {version}: {', '.join(extra)}")
        if "subshell_id" in h and not isinstance(h["subshell_id"], (str, type(None))):
            problems.append("subshell_id is neither a string nor null")
        if not msg.parent_ok:
            p = msg.parent
            absent = [k for k in ("msg_id", "msg_type") if not isinstance(p.get(k), str)]
            problems.append(f"the parent header has no string {' or '.join(absent)}")
        if problems:
            self.report(msg, "; ".join(problems))


SHUTDOWN_BROADCAST = Deviation(
    "ipykernel",
    "publishes its shutdown_reply on iopub as well as on control",
    "it is a copy of the real reply sent to every client; frontends ignore it",
)


class Channel(Rule):
    id = "channel"
    alone = True
    family = "structure"
    summary = "each msg_type travels on its channel, in its direction"
    help = (
        "Requests go from a client on shell or control (control is 'identical to shell'; "
        "interrupt, debug and subshell requests are control only), replies come back on "
        "the request's channel, outputs and status are published on iopub, input_request "
        "comes from the kernel on stdin and input_reply from the client. Comm messages go "
        "from a client on shell, or from the kernel on iopub. Types the spec does not "
        "define are not judged (the spec asks both sides to allow them)."
    )
    spec = "introduction"
    deviations = (SHUTDOWN_BROADCAST,)

    @classmethod
    def applies(cls, ch: str, source: str, msg_type: str) -> bool:
        places = allowed_places(msg_type)  # only misplaced messages reach ``message``
        return places is not None and (ch, source) not in places

    def message(self, msg: Msg) -> None:
        places = allowed_places(msg.msg_type)
        if places is None or (msg.ch, msg.source) in places:
            return
        if msg.msg_type == "shutdown_reply" and msg.ch == "iopub":
            self.report(msg, "shutdown_reply published on iopub", deviation=SHUTDOWN_BROADCAST)
            return
        self.report(
            msg,
            f"{msg.msg_type} on {msg.ch} from the {msg.source or 'unknown sender'}; "
            f"it belongs on {describe_places(places)}",
        )


ABORTED = Deviation(
    "ipykernel",
    "answers execute requests it skips after an error (stop_on_error) with "
    "`status: aborted` and no execution_count",
    "frontends treat it as 'not run'; the spec's replacement, status error, would show "
    "an error the user did not cause",
)


class Deprecated(Rule):
    id = "deprecated"
    alone = True
    family = "structure"
    severity = "warning"
    summary = "no deprecated message forms (aborted status, shutdown on shell, 'debugger' key)"
    help = (
        "Since 5.1 `status: aborted` in a reply is deprecated: kernels should send "
        "`status: error` (and an execute_reply always carries execution_count). Since 5.4 "
        "a shutdown_request belongs on control, not shell. Since 5.5 kernel_info_reply's "
        "`debugger` flag gives way to `supported_features`. Each is judged against the "
        "version in the message's own header."
    )
    spec = "request-reply"
    msg_types = REPLIES | {"shutdown_request"}
    deviations = (ABORTED,)

    def message(self, msg: Msg) -> None:
        minor = msg.minor if msg.minor is not None else 0
        mt = msg.msg_type
        if mt == "shutdown_request":
            if msg.ch == "shell" and msg.source == "client" and minor >= 4:
                self.report(msg, "shutdown_request on shell; since 5.4 it belongs on control")
            return
        if msg.source != "kernel":
            return
        c = msg.content
        if c.get("status") == "aborted" and minor >= 1:
            text = "status 'aborted' is deprecated since 5.1 (send 'error')"
            if mt == "execute_reply" and "execution_count" not in c:
                text += "; an execute_reply carries execution_count whatever its status"
            if mt == "execute_reply":
                self.report(msg, text, deviation=ABORTED)
            else:
                self.report(msg, text)
        elif mt == "kernel_info_reply" and minor >= 5 and "debugger" in c:
            self.report(msg, "kernel_info_reply has 'debugger', deprecated since 5.5")


RULES = [Frames, Header, Channel, Deprecated]
