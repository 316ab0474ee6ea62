"""The catalog's tables: every column with its Arrow type and one-line meaning.

One list per dataset (``sessions``, ``messages``, ``findings``); the writer builds
its Arrow schemas from them, docs/catalog.md lists them (a test checks that every
column is documented), and SCHEMA_VERSION goes into each dataset's metadata. A
change of a column's meaning or type is a new schema version.
"""

from __future__ import annotations

import pyarrow as pa

#: bumped when a column changes meaning or type (added columns keep the version readable)
SCHEMA_VERSION = "1"
METADATA_KEY = b"krec_catalog_schema"
DATASETS = ("sessions", "messages", "findings")

#: microseconds: what Spark, Trino/Athena and pandas read without a cast
_TS = pa.timestamp("us", tz="UTC")

#: (name, type, meaning)
SESSIONS: list[tuple[str, pa.DataType, str]] = [
    ("log_id", pa.string(), "stable id of the recording (a digest of its header)"),
    ("location", pa.string(), "path or URL the log was catalogued from"),
    ("log_bytes", pa.int64(), "size of the log in bytes when catalogued"),
    ("format_version", pa.int32(), "krec log format version"),
    ("krec_version", pa.string(), "krec version that recorded it"),
    ("audit", pa.bool_(), "an audit log (no code or output payloads kept)"),
    ("kernel_name", pa.string(), "kernelspec name (python3, ir, ...)"),
    ("kernel_display_name", pa.string(), "kernelspec display name"),
    ("language", pa.string(), "kernel language from the kernelspec or kernel_info_reply"),
    ("kernel_implementation", pa.string(), "implementation from kernel_info_reply (ipython)"),
    ("kernel_version", pa.string(), "implementation_version from kernel_info_reply"),
    ("language_version", pa.string(), "language_info.version from kernel_info_reply"),
    ("protocol_client", pa.string(), "messaging version of the client's first request"),
    ("protocol_kernel", pa.string(), "protocol_version of the kernel_info_reply"),
    ("protocol_kernelspec", pa.string(), "kernel_protocol_version in the kernelspec"),
    ("user", pa.string(), "the user where known: client_identity, JupyterHub user, OS user"),
    ("jupyterhub_user", pa.string(), "JUPYTERHUB_USER recorded in the header"),
    ("session_path", pa.string(), "notebook path from a client_identity event"),
    ("kernel_id", pa.string(), "jupyter_server kernel id from a client_identity event"),
    ("host", pa.string(), "host the recording was made on"),
    ("start", _TS, "when the recording started (header created)"),
    ("end", _TS, "time of the last record"),
    ("records", pa.int64(), "records in the log (messages and events)"),
    ("messages", pa.int64(), "message records"),
    ("requests", pa.int64(), "client requests on shell and control"),
    ("errors", pa.int64(), "replies with status error (failed requests)"),
    ("findings", pa.int64(), "krec check findings (errors and warnings)"),
    ("finding_errors", pa.int64(), "krec check findings of severity error"),
    ("busy_s", pa.float64(), "seconds the kernel was busy (union of busy..idle spans)"),
    ("heartbeat_losses", pa.int64(), "heartbeat_lost events"),
    ("restarts", pa.int64(), "restart events"),
    ("interrupts", pa.int64(), "interrupt events"),
    ("kernel_deaths", pa.int64(), "kernel_died events"),
    ("log_warnings", pa.list_(pa.string()), "reader warnings (truncated or corrupt tail)"),
    ("catalogued", _TS, "when this row was written"),
]

MESSAGES: list[tuple[str, pa.DataType, str]] = [
    ("log_id", pa.string(), "the recording (sessions.log_id)"),
    ("record", pa.int64(), "record position in the log, as in krec show"),
    ("time", _TS, "capture time"),
    ("channel", pa.string(), "shell, control, stdin or iopub"),
    ("direction", pa.string(), "who sent it: client, kernel or krec"),
    ("msg_type", pa.string(), "header msg_type"),
    ("msg_id", pa.string(), "header msg_id"),
    ("parent_msg_id", pa.string(), "parent header msg_id (null when empty)"),
    ("parent_msg_type", pa.string(), "parent header msg_type"),
    ("session", pa.string(), "header session"),
    ("username", pa.string(), "header username"),
    ("subshell_id", pa.string(), "header subshell_id (messaging 5.5 subshells)"),
    ("version", pa.string(), "header version (messaging protocol)"),
    ("size", pa.int64(), "bytes of the four JSON frames plus buffers"),
    ("execution_count", pa.int64(), "execution_count of execute_input/result/reply"),
    ("status", pa.string(), "reply status (ok, error, aborted)"),
    ("execution_state", pa.string(), "busy, idle or starting for status messages"),
    ("ename", pa.string(), "error name of error replies and error outputs"),
    ("evalue", pa.string(), "error value of error replies and error outputs"),
    ("latency_ms", pa.float64(), "for a reply: milliseconds since its request"),
    ("code", pa.string(), "code of execute_request (null in audit logs)"),
]

FINDINGS: list[tuple[str, pa.DataType, str]] = [
    ("log_id", pa.string(), "the recording (sessions.log_id)"),
    ("record", pa.int64(), "record position of the finding"),
    ("time", _TS, "time of that record"),
    ("rule", pa.string(), "krec check rule id (krec check --list)"),
    ("severity", pa.string(), "error or warning"),
    ("channel", pa.string(), "channel of the record (null for events)"),
    ("direction", pa.string(), "sender of the record"),
    ("msg_type", pa.string(), "msg_type of the record"),
    ("msg_id", pa.string(), "msg_id of the record"),
    ("text", pa.string(), "what is wrong"),
    ("spec", pa.string(), "link to the messaging spec section"),
]

TABLES = {"sessions": SESSIONS, "messages": MESSAGES, "findings": FINDINGS}
PARTITION = ("date", pa.string(), "Hive partition: UTC day (YYYY-MM-DD) of the row's time")


def arrow_schema(dataset: str) -> pa.Schema:
    """The Arrow schema of one dataset's files (the ``date`` partition column excluded)."""
    fields = [pa.field(name, kind) for name, kind, _ in TABLES[dataset]]
    return pa.schema(fields, metadata={METADATA_KEY: SCHEMA_VERSION.encode()})
