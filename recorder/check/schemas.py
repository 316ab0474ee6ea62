"""Content schemas per msg_type: jupyter_kernel_test's msgspec_v5, fixed and completed.

The fragments come from ``jupyter_kernel_test.msgspec_v5`` (the schemas kernel test
suites already use). This module corrects what disagrees with the spec, adds the
message types it lacks (comms, iopub_welcome, debug and the 5.5 subshell messages)
and compiles each schema once with fastjsonschema, which is fast enough to validate
every message of a large log. ``PATCHES`` lists each change with its reason for
docs/check.md.
"""

from __future__ import annotations

import builtins
import copy
import importlib.util
import os
import types
from collections.abc import Callable
from typing import Any

import fastjsonschema

from krec.recorder.errors import KrecError

#: replies whose content has a status "ok" / "error" / "aborted" (the ok form is the schema)
REPLIES_WITH_STATUS = frozenset(
    {
        "execute_reply",
        "inspect_reply",
        "complete_reply",
        "history_reply",
        "connect_reply",
        "comm_info_reply",
        "kernel_info_reply",
        "shutdown_reply",
        "interrupt_reply",
        "create_subshell_reply",
        "delete_subshell_reply",
        "list_subshell_reply",
    }
)

_STRING = {"type": "string"}

ADDED: dict[str, dict[str, Any]] = {
    "comm_open": {
        "properties": {
            "comm_id": _STRING,
            "target_name": _STRING,
            "data": {"type": "object"},
            "target_module": {"type": ["string", "null"]},
        },
        "required": ["comm_id", "target_name", "data"],
    },
    "comm_msg": {
        "properties": {"comm_id": _STRING, "data": {"type": "object"}},
        "required": ["comm_id", "data"],
    },
    "comm_close": {
        "properties": {"comm_id": _STRING, "data": {"type": "object"}},
        "required": ["comm_id"],
    },
    "iopub_welcome": {"properties": {"subscription": _STRING}},
    "create_subshell_request": {"properties": {}},
    "create_subshell_reply": {"properties": {"status": {"enum": ["ok"]}, "subshell_id": _STRING}},
    "delete_subshell_request": {"properties": {"subshell_id": _STRING}},
    "delete_subshell_reply": {"properties": {"status": {"enum": ["ok"]}}},
    "list_subshell_request": {"properties": {}},
    "list_subshell_reply": {
        "properties": {
            "status": {"enum": ["ok"]},
            "subshell_id": {"type": "array", "items": _STRING},
        }
    },
    # debug messages carry Debug Adapter Protocol messages; only their envelope is checked
    "debug_request": {
        "properties": {
            "type": {"enum": ["request"]},
            "command": _STRING,
            "seq": {"type": "integer"},
        },
        "required": ["type", "command"],
    },
    "debug_reply": {
        "properties": {
            "type": {"enum": ["response"]},
            "command": _STRING,
            "success": {"type": "boolean"},
            "request_seq": {"type": "integer"},
        },
        "required": ["type", "command", "success"],
    },
    "debug_event": {
        "properties": {"type": {"enum": ["event"]}, "event": _STRING},
        "required": ["type", "event"],
    },
}

#: (msg_type, change, reason) of every departure from msgspec_v5, for docs/check.md
PATCHES: list[tuple[str, str, str]] = [
    (
        "input_request",
        "`password` is a boolean",
        "msgspec_v5 declares it a number, which rejects every real input_request",
    ),
    (
        "update_display_data",
        "`transient.display_id` (a string) is required",
        "the spec says the message must contain a transient field with a display_id",
    ),
    (
        "execute_request",
        "only `code` is required; the other fields are typed when present",
        "the spec gives defaults for them and kernels (ipykernel) treat them as optional",
    ),
    (
        "kernel_info_reply",
        "`supported_features` (list of strings) is typed",
        "added in 5.5",
    ),
    (
        "replies",
        "`status: aborted` is the spelling checked (msgspec_v5 says `abort`)",
        "the spec and ipykernel spell it `aborted`; the `deprecated` rule reports it",
    ),
    (
        "(added)",
        "comm_open, comm_msg, comm_close, iopub_welcome, debug_request/reply/event, "
        "create/delete/list_subshell_request/reply",
        "msgspec_v5 has no schema for them",
    ),
]


class _Inert:
    """Stands in for jsonschema's classes while msgspec_v5's code runs (see below)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass


def _msgspec_v5_fragments() -> dict[str, dict[str, Any]]:
    """``schema_fragments`` of jupyter_kernel_test's msgspec_v5, read without importing it.

    Importing it imports jsonschema (and jupyter_kernel_test imports jupyter_client),
    which takes about two seconds; its fragments are plain dicts, so the module's code
    is run with a stand-in for the two jsonschema names it imports.
    """
    package = importlib.util.find_spec("jupyter_kernel_test")
    if package is None or not package.submodule_search_locations:
        raise KrecError("krec check needs jupyter_kernel_test (pip install jupyter_kernel_test)")
    path = os.path.join(list(package.submodule_search_locations)[0], "msgspec_v5.py")
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except OSError as e:
        raise KrecError(f"cannot read jupyter_kernel_test's schemas: {e}") from None
    stand_in = types.ModuleType("jsonschema")
    stand_in.Draft4Validator = stand_in.ValidationError = _Inert  # type: ignore[attr-defined]

    def import_(name: str, *args: Any, **kwargs: Any) -> Any:
        return stand_in if name == "jsonschema" else __import__(name, *args, **kwargs)

    namespace: dict[str, Any] = {
        "__name__": "jupyter_kernel_test.msgspec_v5",
        "__builtins__": {**builtins.__dict__, "__import__": import_},
    }
    exec(compile(source, path, "exec"), namespace)
    return namespace["schema_fragments"]


def _fragments() -> dict[str, dict[str, Any]]:
    frags = copy.deepcopy(_msgspec_v5_fragments())
    frags["input_request"]["properties"]["password"] = {"type": "boolean"}
    frags["update_display_data"]["properties"]["transient"] = {
        "type": "object",
        "properties": {"display_id": _STRING},
        "required": ["display_id"],
    }
    frags["execute_request"]["required"] = ["code"]
    frags["kernel_info_reply"]["properties"]["supported_features"] = {
        "type": "array",
        "items": _STRING,
    }
    frags.update(copy.deepcopy(ADDED))
    return frags


def _draft4(node: Any) -> Any:
    """msgspec_v5 uses ``const``, which draft 4 (and so fastjsonschema) ignores: use ``enum``."""
    if isinstance(node, dict):
        out = {k: _draft4(v) for k, v in node.items()}
        if "const" in out:
            out["enum"] = [out.pop("const")]
        return out
    if isinstance(node, list):
        return [_draft4(v) for v in node]
    return node


def content_schema(msg_type: str, strict: bool) -> dict[str, Any] | None:
    """The JSON schema of a message's content (the ``ok`` form for replies), or None.

    ``strict`` forbids unknown fields, as msgspec_v5 does for protocol 5.0 and 5.1.
    """
    frag = _fragments_cached().get(msg_type)
    if frag is None:
        return None
    schema: dict[str, Any] = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": {},
        "additionalProperties": not strict,
    }
    schema.update(copy.deepcopy(frag))
    if "required" not in schema:
        schema["required"] = sorted(schema["properties"])
    return _draft4(schema)


ERROR_REPLY_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object",
    "properties": {
        "status": {"enum": ["error"]},
        "ename": _STRING,
        "evalue": _STRING,
        "traceback": {"type": "array", "items": _STRING},
    },
    "required": ["status", "ename", "evalue", "traceback"],
}

_FRAGMENTS: dict[str, dict[str, Any]] | None = None
_COMPILED: dict[tuple[str, bool], Callable[[Any], Any] | None] = {}


def _fragments_cached() -> dict[str, dict[str, Any]]:
    global _FRAGMENTS
    if _FRAGMENTS is None:
        _FRAGMENTS = _fragments()
    return _FRAGMENTS


def known_types() -> frozenset[str]:
    """The msg_types that have a content schema."""
    return frozenset(_fragments_cached())


def _validator(key: tuple[str, bool]) -> Callable[[Any], Any] | None:
    fn = _COMPILED.get(key, _MISSING)
    if fn is _MISSING:
        msg_type, strict = key
        schema = ERROR_REPLY_SCHEMA if msg_type == _ERROR else content_schema(msg_type, strict)
        fn = None if schema is None else fastjsonschema.compile(schema)
        _COMPILED[key] = fn
    return fn  # type: ignore[return-value]


def check_content(msg_type: str, content: dict[str, Any], strict: bool = False) -> str | None:
    """Why ``content`` does not fit the schema of ``msg_type`` (None: it fits, or no schema)."""
    fn = _validator((msg_type, strict))
    if fn is None:
        return None
    try:
        fn(content)
    except fastjsonschema.JsonSchemaException as e:
        return _error_text(e)
    return None


def check_error_reply(content: dict[str, Any]) -> str | None:
    """Why a ``status: error`` reply's content lacks ename/evalue/traceback (None: it is fine)."""
    return check_content(_ERROR, content)


_ERROR = "<error reply>"
_MISSING: Any = object()


def _error_text(e: Exception) -> str:
    """fastjsonschema's message, made to read as one line about the content."""
    text = getattr(e, "message", None) or str(e)
    if text.startswith("data"):
        text = "content" + text[4:]
    return text if len(text) <= 200 else text[:197] + "..."
