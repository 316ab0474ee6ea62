"""Normalization: one exchange's results as comparable text, with volatile details masked.

``results(exchange, normalizer)`` gives, field by field (reply, streams, results,
displays, errors, stdin, comms, counts), what a kernel answered a request with,
after masking what changes from run to run by nature: ANSI codes, memory
addresses, UUIDs, temporary paths, execution counts (made relative), and the ids
of comms, displays and subshells (replaced by labels in order of appearance).
docs/replay.md lists every rule.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from krec.recorder.log.exchange import Exchange

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]")
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{4,}\b")
# a UUID, or a jupyter_client msg_id (``<session uuid>_<pid>_<count>``)
_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
    r"[0-9a-fA-F]{12}(?:_\d+_\d+)?\b"
)
# ipykernel compiles each cell to <tempdir>/ipykernel_<pid>/<hash>.py (warnings and
# tracebacks name it), wherever the temporary directory is
_CELL_FILE = re.compile(r"(?:[^\s'\"<>:,()\[\]]*/)?ipykernel_\d+/-?\d+\.py")
_TMP_PATH = re.compile(r"(?:/private)?(?:/tmp|/var/tmp|/var/folders)/[^\s'\"<>:,)\]]*")
_CELL_REF = re.compile(r"((?:Cell )?In ?\[)(\d+)(\])")
_IMAGE_PREFIX = "image/"
# debugpy's start-up warnings ("0.00s - Debugger warning: ... frozen modules ..."), which
# ipykernel sometimes forwards as stderr output of whichever cell runs first
_DEBUGPY_NOISE = re.compile(r"^\d+\.\d+s - .*(?:\n|$)", re.MULTILINE)
# pyzmq's event loop logs this to the kernel's stderr when a socket closes with events
# pending (a comm_msg racing a shutdown); ipykernel forwards it as some request's stderr
_TORNADO_NOISE = re.compile(
    r"^WARNING:tornado\.general:Got events for closed stream .*(?:\n|$)", re.MULTILINE
)

#: reply fields that change between kernel builds or runs, never compared
_VOLATILE_REPLY_KEYS = {
    "kernel_info_reply": {
        "banner",
        "implementation_version",
        "protocol_version",
        "help_links",
        "language_info",
        "debugger",
        "supported_features",
    },
    "history_reply": {"history"},
    "comm_info_reply": set(),
}
#: fields whose difference is reported, in the order the report lists them
FIELDS = (
    "outcome",
    "reply",
    "stdin",
    "stdout",
    "stderr",
    "execute_result",
    "display",
    "error",
    "comms",
    "counts",
)


class Normalizer:
    """Per-log state for normalization: id labels and execution-count offsets."""

    def __init__(self, ignore: Sequence[str] = ()) -> None:
        self.labels: dict[str, str] = {}
        self.requests: dict[str, str] = {}  # request msg_id -> "<request-N>"
        self._counters: Counter[str] = Counter()
        self.count_offset: int | None = None
        self.ignore_keys = {i for i in ignore if not i.startswith("re:")}
        self.ignore_patterns = [re.compile(i[3:]) for i in ignore if i.startswith("re:")]

    def label(self, kind: str, value: str) -> str:
        if not value:
            return ""
        if value not in self.labels:
            self._counters[kind] += 1
            self.labels[value] = f"<{kind}-{self._counters[kind]}>"
        return self.labels[value]

    def new_kernel(self) -> None:
        self.count_offset = None

    def count(self, value: Any) -> Any:
        if not isinstance(value, int):
            return value
        if self.count_offset is None:
            self.count_offset = value - 1
        return value - self.count_offset

    def request(self, msg_id: str, label: str) -> None:
        """Name a request's msg_id (the paired requests of two logs share a label), so the
        ids a kernel keeps in content (an Output widget's ``msg_id``) compare equal."""
        if msg_id:
            self.requests[msg_id] = label

    def _uuid(self, match: re.Match[str]) -> str:
        return self.requests.get(match.group(0), "<uuid>")

    def text(self, value: str) -> str:
        s = _ANSI.sub("", value)
        for known, label in self.labels.items():
            if len(known) >= 8 and known in s:
                s = s.replace(known, label)
        s = _UUID.sub(self._uuid, s)
        s = _ADDRESS.sub("0x?", s)
        s = _CELL_FILE.sub("<cell file>", s)
        s = _TMP_PATH.sub("<tmp>", s)
        s = _CELL_REF.sub(lambda m: f"{m.group(1)}{self._cell(m.group(2))}{m.group(3)}", s)
        for pattern in self.ignore_patterns:
            s = pattern.sub("<ignored>", s)
        return s

    def _cell(self, digits: str) -> str:
        if self.count_offset is None:
            return digits
        return str(int(digits) - self.count_offset)

    def data(self, value: Any) -> Any:
        """Normalize a JSON value: drop ignored keys, normalize every string."""
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in sorted(value.items()) if k not in self.ignore_keys}
        if isinstance(value, list):
            return [self.data(v) for v in value]
        if isinstance(value, str):
            return self.requests.get(value) or self.text(value)
        return value


def _dump(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False)


def _bundle(data: Any, norm: Normalizer) -> str:
    """A MIME bundle as readable text: text/plain verbatim, images by size and digest."""
    if not isinstance(data, dict):
        return _dump(norm.data(data))
    lines = []
    for mime in sorted(data):
        if mime in norm.ignore_keys:
            continue
        value = data[mime]
        if mime.startswith(_IMAGE_PREFIX) and isinstance(value, str) and mime != "image/svg+xml":
            digest = hashlib.sha1(value.encode()).hexdigest()[:12]
            lines.append(f"[{mime}] <{len(value)} base64 chars, sha1 {digest}>")
        elif isinstance(value, str):
            lines.append(f"[{mime}]\n{norm.text(value)}")
        else:
            lines.append(f"[{mime}]\n{_dump(norm.data(value))}")
    return "\n".join(lines)


def results(ex: Exchange | None, norm: Normalizer, outcome: str = "") -> dict[str, str]:
    """The normalized results of one exchange, field -> text ('' when absent)."""
    out = dict.fromkeys(FIELDS, "")
    if ex is None:
        return out
    out["outcome"] = outcome or (
        "" if ex.reply is not None or ex.idle_t is not None else "no reply"
    )
    streams: dict[str, list[str]] = {"stdout": [], "stderr": []}
    displays: list[str] = []
    comms: list[str] = []
    counts: Counter[str] = Counter()
    for rec in ex.outputs:
        mt, c = rec.msg_type, rec.content
        if mt != "stream":
            counts[mt] += 1
        if mt == "stream":
            streams.setdefault(str(c.get("name", "stdout")), []).append(str(c.get("text", "")))
        elif mt == "execute_result":
            out["execute_result"] = f"[{norm.count(c.get('execution_count'))}]\n" + _bundle(
                c.get("data"), norm
            )
        elif mt in ("display_data", "update_display_data"):
            transient = c.get("transient") or {}
            did = transient.get("display_id") if isinstance(transient, dict) else None
            tag = f" {norm.label('display', did)}" if isinstance(did, str) else ""
            displays.append(f"{mt}{tag}\n{_bundle(c.get('data'), norm)}")
        elif mt == "clear_output":
            displays.append(f"clear_output wait={bool(c.get('wait'))}")
        elif mt == "error":
            tb = "\n".join(str(x) for x in c.get("traceback") or [])
            out["error"] = norm.text(f"{c.get('ename')}: {c.get('evalue')}\n{tb}")
        elif mt.startswith("comm_"):
            comm = norm.label("comm", str(c.get("comm_id", "")))
            body = {k: v for k, v in c.items() if k != "comm_id"}
            comms.append(f"{mt} {comm} {_dump(norm.data(body))}")
    out["stdout"] = norm.text("".join(streams.pop("stdout")))
    stderr = _DEBUGPY_NOISE.sub("", "".join(streams.pop("stderr")))
    out["stderr"] = norm.text(_TORNADO_NOISE.sub("", stderr))
    for name, chunks in streams.items():
        out["stdout"] += norm.text(f"[{name}] " + "".join(chunks))
    out["display"] = "\n".join(displays)
    out["comms"] = "\n".join(comms)
    out["counts"] = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    out["stdin"] = "\n".join(
        norm.text(str(r.content.get("prompt", "")))
        + (" (password)" if r.content.get("password") else "")
        for r in ex.stdin
        if r.msg_type == "input_request"
    )
    out["reply"] = _reply(ex, norm)
    return out


def _reply(ex: Exchange, norm: Normalizer) -> str:
    reply = ex.reply
    if reply is None:
        return ""
    content = dict(reply.content)
    mt = reply.msg_type
    for key in _VOLATILE_REPLY_KEYS.get(mt, ()):
        content.pop(key, None)
    if mt == "complete_reply":
        content["metadata"] = _completion_metadata(content.get("metadata"))
    if mt == "execute_reply":
        content.pop("engine_info", None)
        if ex.request.subshell_id:
            # a subshell runs beside the main shell: which of them counted first is a race
            content["execution_count"] = "<count in a subshell>"
        else:
            content["execution_count"] = norm.count(content.get("execution_count"))
    if "comm_id" in content:
        content["comm_id"] = norm.label("comm", str(content["comm_id"]))
    if isinstance(content.get("comms"), dict):
        content["comms"] = {norm.label("comm", k): v for k, v in content["comms"].items()}
    if "subshell_id" in content:
        content["subshell_id"] = norm.label("subshell", str(content["subshell_id"]))
    if isinstance(content.get("subshell_id"), list):
        content["subshell_id"] = [norm.label("subshell", str(s)) for s in content["subshell_id"]]
    return f"{mt}\n{_dump(norm.data(content))}"


#: what jedi infers for a completion (IPython's experimental completion metadata) depends
#: on how far inference got in its time budget: "instance" one run, "<unknown>" the next
_INFERRED_COMPLETION_KEYS = ("type", "signature")


def _completion_metadata(metadata: Any) -> Any:
    if not isinstance(metadata, dict):
        return metadata
    types = metadata.get("_jupyter_types_experimental")
    if not isinstance(types, list):
        return metadata
    kept = [
        {k: v for k, v in t.items() if k not in _INFERRED_COMPLETION_KEYS}
        if isinstance(t, dict)
        else t
        for t in types
    ]
    return {**metadata, "_jupyter_types_experimental": kept}


def learn_ids(ex: Exchange, norm: Normalizer) -> None:
    """Label the ids an exchange introduces before its results are normalized."""
    sub = ex.request.header.get("subshell_id")
    if isinstance(sub, str):
        norm.label("subshell", sub)
    for rec in (ex.request, *ex.outputs):
        cid = rec.content.get("comm_id")
        if isinstance(cid, str) and rec.msg_type in ("comm_open", "comm_msg", "comm_close"):
            norm.label("comm", cid)
    if ex.reply is not None:
        sid = ex.reply.content.get("subshell_id")
        if isinstance(sid, str):
            norm.label("subshell", sid)
