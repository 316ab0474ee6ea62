"""Protocol facts the rules share: which message types exist, and on which channel each travels."""

from __future__ import annotations

#: requests a client may send on shell (and, since "control is identical to shell", on control)
SHELL_REQUESTS = frozenset(
    {
        "execute_request",
        "inspect_request",
        "complete_request",
        "history_request",
        "is_complete_request",
        "connect_request",
        "comm_info_request",
        "kernel_info_request",
        "shutdown_request",
    }
)
#: requests the spec puts on control only
CONTROL_REQUESTS = frozenset(
    {
        "interrupt_request",
        "debug_request",
        "create_subshell_request",
        "delete_subshell_request",
        "list_subshell_request",
    }
)
REQUESTS = SHELL_REQUESTS | CONTROL_REQUESTS
REPLIES = frozenset(r[:-8] + "_reply" for r in REQUESTS)
COMMS = frozenset({"comm_open", "comm_msg", "comm_close"})
#: what a kernel publishes on iopub
IOPUB = frozenset(
    {
        "stream",
        "display_data",
        "update_display_data",
        "execute_input",
        "execute_result",
        "error",
        "status",
        "clear_output",
        "debug_event",
        "iopub_welcome",
    }
    | COMMS
)
#: client messages a kernel must bracket with status busy/idle
BRACKETED = REQUESTS | COMMS
#: every message type of the spec
KNOWN = REQUESTS | REPLIES | COMMS | IOPUB | {"input_request", "input_reply"}


def allowed_places(msg_type: str) -> frozenset[tuple[str, str]] | None:
    """The (channel, from) pairs where ``msg_type`` may appear; None for a type not in the spec."""
    return _PLACES.get(msg_type)


def _places() -> dict[str, frozenset[tuple[str, str]]]:
    table: dict[str, frozenset[tuple[str, str]]] = {}
    for mt in SHELL_REQUESTS:
        table[mt] = frozenset({("shell", "client"), ("control", "client")})
        table[mt[:-8] + "_reply"] = frozenset({("shell", "kernel"), ("control", "kernel")})
    for mt in CONTROL_REQUESTS:
        table[mt] = frozenset({("control", "client")})
        table[mt[:-8] + "_reply"] = frozenset({("control", "kernel")})
    for mt in IOPUB:
        table[mt] = frozenset({("iopub", "kernel")})
    table["iopub_welcome"] = frozenset({("iopub", "kernel"), ("iopub", "krec")})
    for mt in COMMS:
        table[mt] = frozenset({("iopub", "kernel"), ("shell", "client"), ("control", "client")})
    table["input_request"] = frozenset({("stdin", "kernel")})
    table["input_reply"] = frozenset({("stdin", "client")})
    return table


_PLACES = _places()


_ORDER = ("shell", "control", "stdin", "iopub")


def describe_places(places: frozenset[tuple[str, str]]) -> str:
    """e.g. "shell or control, from the client"."""
    by_source: dict[str, list[str]] = {}
    for ch, source in sorted(places, key=lambda p: (_ORDER.index(p[0]), p[1])):
        by_source.setdefault(source, []).append(ch)
    return "; ".join(f"{' or '.join(chs)}, from the {src}" for src, chs in by_source.items())
