"""docs/check.md, rendered from the rule classes so the page and the code cannot drift.

``python -m krec.recorder.check.docs docs/check.md`` rewrites the page; a test
fails when it is out of date.
"""

from __future__ import annotations

import sys

from krec.recorder.check.base import SPEC_URL, Finding, Rule
from krec.recorder.check.runner import all_rules
from krec.recorder.check.schemas import PATCHES

INTRO = """\
# krec check

`krec check` reads a recording and reports every violation of the [Jupyter
messaging specification 5.x]({spec}) it holds: a missing `status: idle`, a reply
whose parent is wrong, an `execute_input` after the outputs, a `comm_msg` for a comm
that was never opened, and so on. jupyter_kernel_test validates the replies to its
own canned requests; a krec log holds a whole real session, from whatever frontend
and kernel produced it, so all of it can be checked.

Each rule below is a small class in `krec.recorder.check` with its id, severity,
summary and help; `krec check --list` and this page are generated from them
(`python -m krec.recorder.check.docs docs/check.md`, kept current by a test).
"""

USAGE = """\
## Usage

    krec check LOG [--json] [--rule ID]... [--ignore ID]... [--strict]
                   [--kernel-info-timeout S] [--idle-grace S]
    krec check --list [--json]

`--rule` and `--ignore` take a rule id, a glob over ids (`status-*`) or a family
name (`comms`), repeated or comma-separated: `--ignore stdin-reply-parent,no-reply`.
`--kernel-info-timeout S` (default 10) is the `slow-kernel-info` threshold;
`--idle-grace S` (default 1) is how long a log must go on after a reply before a
missing `status: idle` counts (a later status message of the kernel counts at once).

Exit status: **0** when there is no error (warnings alone exit 0, unless
`--strict`); **1** when there is an error (or, with `--strict`, a warning); **2** when
the log cannot be read or the arguments are wrong (one line on stderr). A log that
ends in a truncated record is checked up to it, with a warning on stderr.

## Output

One line per finding, in record order, then a summary line:

{example}
{summary}

A line gives the record's position in the log (`#55`, as `krec show` numbers
records), its time since the recording started, channel and sender, msg_type,
severity, rule id, what is wrong, and the spec section that says so. A finding
about a missing message (no idle, no reply) points at the request. A finding at an
event (`heartbeat_lost`, `bad_message`) says `event` where the channel would be.

`--json` prints one JSON document:

```json
{{
 "log": "session.krec",
 "records": 120,
 "rules": ["frames", "header", "..."],
 "protocol": {{"client": "5.4", "kernel": "5.3", "kernelspec": "5.5"}},
 "errors": 2,
 "warnings": 1,
 "log_warnings": [],
 "findings": [
  {{"rule": "error-output", "severity": "error", "index": 55, "t": 1795560640813780000,
   "rel": 0.924, "ch": "shell", "from": "kernel", "msg_type": "execute_reply",
   "msg_id": "d7f3d2ef-..._6809_46", "text": "status: error, but ...",
   "spec": "{spec}#execution-errors", "related": [51]}}
 ]
}}
```

`t` is the capture time (ns since the epoch), `rel` seconds since the recording
started, `related` the other records involved (the request, the first output...).
For a finding at an event, `ch` and `from` are empty and `msg_type` is the event
name. `protocol` gives the messaging versions seen: the first client request's
header, the kernel's kernel_info_reply, the kernelspec's `kernel_protocol_version`.

The filter language has the same findings: `krec show LOG -f check:*` (every
record with a finding), `-f check:comm-unknown`, `-f check:error`; the viewer
marks those rows and shows the finding in the detail pane.
"""

READING = """\
## How a session is read

- **Versions.** Each message is judged against the version in its own header:
  5.0 and 5.1 messages may not carry unknown header or content fields (as
  jupyter_kernel_test has it), `date` is optional before 5.1, deprecations apply
  from the version that made them. krec checks 5.x only.
- **Order.** Only the order of messages on one channel is judged. Shell, iopub,
  stdin and control are separate sockets: whether a reply is captured before or
  after its request's `status: idle` says nothing about the kernel. A client request
  that was logged after the first iopub messages the kernel published for it (older
  krec logs, captured per channel in separate threads) is moved back before them.
- **Start of a kernel.** A kernel drops what it publishes on iopub before its
  subscriber is connected, and ipykernel often publishes the `busy` of the first
  kernel_info_request that early. Requests sent before the kernel's first iopub
  message reached krec are not judged on busy, idle or error output.
- **Restarts.** A `restart` event (or a new kernel's `status: starting`) starts the
  execution count over and closes every comm. Display ids stay valid: the frontend
  still shows those outputs.
- **Attached recordings.** In a log made with `krec record --existing` the session
  began before the recording, so a comm, display id or request it never saw is a
  warning, not an error.
- **Reused msg_ids.** When a client reuses a msg_id (reported by
  `duplicate-request`), what follows is paired with the newest request of that id.
"""

DEVIATIONS_INTRO = """\
## Known deviations

Recordings of ipykernel 7 driven by jupyter_client 8 (the test suite's, and
`sample_sessions/`) check clean except for these. Each is reported as a warning
whose text says "known ... behaviour", so it stays visible but does not fail a
check (`--ignore RULE` hides it).

| who | what | rule | why it is harmless |
|---|---|---|---|
"""

NOT_JUDGED = """\
Not judged, on purpose:

- ipykernel 7 says `protocol_version: 5.3` in kernel_info_reply, its kernelspec
  says 5.5, and jupyter_client writes `version: 5.4` in every header; it sends
  5.5 messages (`iopub_welcome`, subshell replies) under that 5.4 header. Messages
  are judged by their header's version and no rule compares these numbers.
- ipykernel's execute_input of an execution without `store_history` shows the next
  count rather than the current one; `execution-count` judges only executions with
  store_history.
- ipykernel's `usage_request`/`usage_reply` (control) is not in the spec: types the
  spec does not define are not judged, as the spec asks ("both sides should allow
  unexpected message types").
- Debug messages carry Debug Adapter Protocol messages: only their envelope
  (`type`, `command`, `success`) is checked; ipykernel's `debugInfo` response has no
  `seq`.
"""

SCHEMAS_INTRO = """\
## Content schemas

`content-schema` validates against the msgspec_v5 schema fragments of
jupyter_kernel_test, compiled with fastjsonschema (draft 4), with these changes:

| message | change | why |
|---|---|---|
"""

PYTHON = """\
## From Python

```python
from krec.recorder.log.reader import LogReader
from krec.recorder.check import run_checks, findings_by_record, findings_for, resolve_rule_ids

with LogReader("session.krec") as reader:
    findings = run_checks(reader)                       # sorted by record index
    only = run_checks(reader, resolve_rule_ids(["comms"], ignore=[]))
    by_record = findings_by_record(findings)           # {{index: [Finding, ...]}}
    shared = findings_for(reader)                      # one pass per reader (viewer, filter)
```

`Finding` has `rule`, `severity`, `index`, `t`, `rel`, `ch`, `source`, `msg_type`,
`msg_id`, `text`, `spec`, `related`, `line()` and `to_json()`. `Checker(header)`
checks records fed one at a time (`feed(index, raw)`, then `finish()`). A new rule
is a `Rule` subclass in a family module listed in `runner.FAMILY_MODULES`; it
appears in `--list`, here and in `check:` once the page is regenerated.
"""


def _rule_section(rule: type[Rule]) -> str:
    lines = [f"### `{rule.id}` ({rule.severity})", "", f"{rule.summary}."]
    lines += ["", rule.help]
    lines += ["", f"Spec: [{rule.spec or 'messaging'}]({rule.spec_url()})"]
    for d in rule.deviations:
        lines += ["", f"Known deviation ({d.who}): {d.what}; {d.why}."]
    return "\n".join(lines) + "\n"


def render() -> str:
    """The whole of docs/check.md."""
    from krec.recorder.check.runner import summary_line

    rules = all_rules()
    example = Finding(
        rule="error-output",
        severity="error",
        index=55,
        t=0,
        rel=0.924,
        ch="shell",
        source="kernel",
        msg_type="execute_reply",
        msg_id="",
        text="status: error, but no error output was published for execute_request #51",
        spec=f"{SPEC_URL}#execution-errors",
    )
    summary = summary_line(
        {
            "records": 120,
            "rules": rules,
            "protocol": {"client": "5.4", "kernel": "5.3", "kernelspec": "5.5"},
            "errors": 2,
            "warnings": 1,
        }
    )
    usage = USAGE.format(spec=SPEC_URL, example="    " + example.line(), summary="    " + summary)
    parts = [INTRO.format(spec=SPEC_URL), usage, READING, "## Rules\n"]
    family = ""
    table = ["| rule | severity | summary |", "|---|---|---|"]
    for r in rules:
        table.append(f"| [`{r.id}`](#{r.id}-{r.severity}) | {r.severity} | {r.summary} |")
    parts.append("\n".join(table) + "\n")
    for r in rules:
        if r.family != family:
            family = r.family
            parts.append(f"## Rules: {family}\n")
        parts.append(_rule_section(r))
    rows = [f"| {d.who} | {d.what} | `{r.id}` | {d.why} |" for r in rules for d in r.deviations]
    rows.append(
        "| ipykernel | publishes output of a background thread after the request's idle "
        "| `output-after-idle` | the spec's caveat: asynchronous output after idle is "
        "left undefined, and notebooks still show it |"
    )
    parts.append(DEVIATIONS_INTRO + "\n".join(rows) + "\n")
    parts.append(NOT_JUDGED)
    patches = [f"| {mt} | {change} | {why} |" for mt, change, why in PATCHES]
    parts.append(SCHEMAS_INTRO + "\n".join(patches) + "\n")
    parts.append(PYTHON.format())
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if args:
        with open(args[0], "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
