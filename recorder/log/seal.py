"""Tamper evidence: a running SHA-256 (or HMAC-SHA-256) over a log's records, in ``seal`` events.

The LogWriter folds the header's bytes and then every record's bytes, as written, into
a ``Chain``: each record's SHA-256 goes into the running hash (HMAC-SHA-256 when a key
is given) and its first ``FP_BYTES`` bytes into the list of fingerprints since the last
seal. A ``seal`` event (every ``SEAL_RECORDS`` records, every ``SEAL_SECONDS`` when
something is unsealed, and at close) carries the running digest and those fingerprints;
it is folded in as the next record, so each seal also covers the seals before it.
``verify_log`` recomputes the chain; the digest says whether a stretch is intact, the
fingerprints say which record in it was altered, removed, inserted or reordered.
docs/audit.md is the specification.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack

from krec.recorder.errors import KrecError

SEAL_EVENT = "seal"
SEAL_RECORDS = 1000
SEAL_SECONDS = 5.0
FP_BYTES = 4
#: environment variable naming the key file, for processes a recorder starts (wrappers)
KEY_ENV = "KREC_SEAL_KEY"
MIN_KEY_BYTES = 16
_KEY_ID_LABEL = b"krec seal key id"
# a packed seal event contains this (msgpack "event": "seal"); other records rarely do
_SEAL_MARK = b"\xa5event\xa4seal"


class SealKeyError(KrecError):
    """The seal key file is missing, unreadable or too short."""


def load_key(path: str | os.PathLike[str]) -> bytes:
    """The key in ``path``: its bytes, without a trailing newline; at least 16 bytes."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            key = f.read(1 << 16)
    except FileNotFoundError:
        raise SealKeyError(f"seal key file {path}: no such file") from None
    except IsADirectoryError:
        raise SealKeyError(f"seal key file {path}: is a directory") from None
    except OSError as e:
        raise SealKeyError(f"seal key file {path}: cannot read: {e.strerror}") from None
    key = key.rstrip(b"\r\n")
    if len(key) < MIN_KEY_BYTES:
        raise SealKeyError(
            f"seal key file {path}: {len(key)} bytes, a key needs at least {MIN_KEY_BYTES} "
            "(make one with: head -c 32 /dev/urandom > KEYFILE)"
        )
    return key


def key_from_env() -> bytes | None:
    """The key of the file ``$KREC_SEAL_KEY`` names, or None when it is not set."""
    path = os.environ.get(KEY_ENV)
    return load_key(path) if path else None


def key_id(key: bytes) -> str:
    """A public name for ``key`` (HMAC of a fixed label): tells a wrong key from tampering."""
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


def header_fields(
    key: bytes | None, every: int = SEAL_RECORDS, seconds: float = SEAL_SECONDS
) -> dict[str, Any]:
    """What a version-2 header says about its chain (never the key)."""
    seal: dict[str, Any] = {
        "alg": "hmac-sha256" if key else "sha256",
        "records": every,
        "seconds": seconds,
        "fp_bytes": FP_BYTES,
    }
    if key:
        seal["key_id"] = key_id(key)
    return {"seal": seal}


class Chain:
    """The running hash of one log, owned by its LogWriter (on the capture thread)."""

    def __init__(
        self,
        header_bytes: bytes,
        key: bytes | None = None,
        *,
        every: int = SEAL_RECORDS,
        seconds: float = SEAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._running: Any = hmac.new(key, digestmod=hashlib.sha256) if key else hashlib.sha256()
        self._running.update(hashlib.sha256(header_bytes).digest())
        self.every = every
        self.seconds = seconds
        self.clock = clock
        self.count = 0  # records folded, seals included: the index the next record gets
        self.seq = 0  # seals written
        self._fps: list[bytes] = []
        self._last_seal = clock()
        self._last_t = 0  # t of the last record folded: a seal's own t, so the log's
        # clock never jumps (a seal of an old log copied, a synthetic log)

    @property
    def unsealed(self) -> int:
        return len(self._fps)

    def fold(self, data: bytes, t: int = 0) -> None:
        """Fold one record's bytes (not a seal), written at ``t``, into the chain."""
        if t > self._last_t:
            self._last_t = t
        digest = hashlib.sha256(data).digest()
        self._running.update(digest)
        self._fps.append(digest[:FP_BYTES])
        self.count += 1

    def fold_seal(self, data: bytes) -> None:
        """Fold a seal record already in the log (appending to it after a restart)."""
        self._running.update(hashlib.sha256(data).digest())
        self._fps = []
        self.count += 1
        self.seq += 1

    def time_due(self) -> bool:
        """Records wait unsealed and the last seal is ``seconds`` old."""
        return bool(self._fps) and self.clock() - self._last_seal >= self.seconds

    def seal(self, pack: Callable[[Any], bytes], final: bool = False) -> bytes:
        """The packed seal record over everything folded so far, itself folded in."""
        record: dict[str, Any] = {
            "t": self._last_t or time.time_ns(),
            "event": SEAL_EVENT,
            "seq": self.seq,
            "n": self.count,
            "fp": b"".join(self._fps),
            "digest": self._running.copy().digest(),
        }
        if final:
            record["final"] = True
        data = pack(record)
        self._running.update(hashlib.sha256(data).digest())
        self._fps = []
        self.count += 1
        self.seq += 1
        self._last_seal = self.clock()
        return data

    def seal_batch(
        self, records: list[bytes], times: list[int], pack: Callable[[Any], bytes]
    ) -> list[bytes]:
        """Fold ``records`` (written at ``times``) in order, with a seal after every
        ``every``-th unsealed one."""
        if len(self._fps) + len(records) < self.every:
            # the usual batch: no seal inside it, so fold without a call per record
            sha, update, keep = hashlib.sha256, self._running.update, self._fps.append
            for data in records:
                digest = sha(data).digest()
                update(digest)
                keep(digest[:FP_BYTES])
            self.count += len(records)
            if times:
                self._last_t = max(self._last_t, max(times))
            return records
        fold = self.fold
        out: list[bytes] = []
        for data, t in zip(records, times, strict=True):
            fold(data, t)
            out.append(data)
            if len(self._fps) >= self.every:
                out.append(self.seal(pack))
        return out

    def snapshot(self) -> tuple[Any, ...]:
        state = (self._running.copy(), self.count, self.seq, list(self._fps), self._last_seal)
        return (*state, self._last_t)

    def restore(self, state: tuple[Any, ...]) -> None:
        """Go back to a ``snapshot`` (the records since were not written)."""
        running, self.count, self.seq, fps, self._last_seal, self._last_t = state
        self._running = running.copy()
        self._fps = list(fps)


def is_seal(data: bytes) -> dict[str, Any] | None:
    """The decoded seal event in a record's bytes, or None when it is another record."""
    if _SEAL_MARK not in data:
        return None
    try:
        raw = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception:
        return None
    if isinstance(raw, dict) and raw.get("event") == SEAL_EVENT and "digest" in raw:
        return raw
    return None


def resume_chain(
    path: str,
    end: int,
    key: bytes | None,
    header: dict[str, Any],
    header_bytes: bytes,
    chain_args: dict[str, Any] | None = None,
) -> Chain | None:
    """The chain of the log at ``path`` up to byte ``end``, to append to it (a restart)."""
    params = header.get("seal")
    if not isinstance(params, dict):
        return None
    want = params.get("key_id")
    if want and (key is None or key_id(key) != want):
        raise SealKeyError(
            f"{path} is sealed with key {want}; give its key ({KEY_ENV} or --seal-key) to append"
        )
    chain = Chain(header_bytes, key if want else None, **(chain_args or {}))
    with open(path, "rb") as f:
        f.seek(len(header_bytes))
        rest = f.read(max(0, end - len(header_bytes)))
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(rest) + 1)
    unpacker.feed(rest)
    start = 0
    while start < len(rest):
        try:
            unpacker.skip()
        except Exception:
            break
        stop = unpacker.tell()
        data = rest[start:stop]
        if is_seal(data) is not None:
            chain.fold_seal(data)
        else:
            chain.fold(data)
        start = stop
    return chain


# -- verifying ----------------------------------------------------------------------


@dataclass
class Verdict:
    """What ``verify_log`` found in one log."""

    path: str
    status: str  # "intact" | "tampered" | "unsealed"
    records: int = 0
    seals: int = 0
    sealed: int = 0  # records covered by a verified seal
    closed: bool = False  # the last record is a final seal
    keyed: bool = False
    digest: str = ""  # the last verified seal's digest, hex
    problem: str = ""  # the first tampering found
    first_bad: int | None = None  # index of the record it names
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.status == "tampered" else 0

    def line(self) -> str:
        if self.status == "tampered":
            return f"{self.path}: TAMPERED: {self.problem}"
        if self.status == "unsealed" and not self.seals:
            return f"{self.path}: unsealed: {'; '.join(self.notes)}"
        what = "keyed " if self.keyed else ""
        text = (
            f"{self.path}: intact: {self.sealed} of {self.records} records under "
            f"{self.seals} {what}seal{'s' if self.seals != 1 else ''}"
        )
        if self.closed:
            text += ", closed"
        if self.notes:
            text += "; " + "; ".join(self.notes)
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "records": self.records,
            "seals": self.seals,
            "sealed": self.sealed,
            "closed": self.closed,
            "keyed": self.keyed,
            "digest": self.digest,
            "problem": self.problem or None,
            "first_bad": self.first_bad,
            "notes": self.notes,
        }


def verify_log(path: str, key: bytes | None = None) -> Verdict:
    """Recompute the chain of the log at ``path``; raises LogFormatError if it is no log."""
    from krec.recorder.log.reader import LogReader

    with LogReader(path) as reader:
        verdict = Verdict(path=path, status="unsealed", records=len(reader))
        params = reader.header.get("seal")
        if reader.version < 2 or not isinstance(params, dict):
            verdict.notes.append(
                f"format version {reader.version} has no hash chain"
                if reader.version < 2
                else "the header has no seal parameters"
            )
            return verdict
        want = params.get("key_id")
        if want:
            verdict.keyed = True
            if key is None:
                raise SealKeyError(f"{path} is sealed with key {want}: give it with --seal-key")
            if key_id(key) != want:
                raise SealKeyError(
                    f"{path} is sealed with key {want}, the key given is {key_id(key)}"
                )
        fp_bytes = params.get("fp_bytes", FP_BYTES)
        header_bytes = os.pread(reader._fd, reader._data_start, 0)
        _Verifier(verdict, header_bytes, key if want else None, fp_bytes).run(reader)
        for warning in reader.warnings:
            verdict.notes.append(warning)
    return verdict


class _Verifier:
    def __init__(self, verdict: Verdict, header_bytes: bytes, key: bytes | None, fpb: int) -> None:
        self.v = verdict
        self.running: Any = hmac.new(key, digestmod=hashlib.sha256) if key else hashlib.sha256()
        self.running.update(hashlib.sha256(header_bytes).digest())
        self.fpb = fpb
        self.since: list[tuple[int, bytes]] = []  # (index, fingerprint) since the last seal
        self.last_seal: int | None = None  # index of the last verified seal
        self.seq = 0

    def run(self, reader: Any) -> None:
        n = len(reader)
        step = 4096
        for start in range(0, n, step):
            stop = min(n, start + step)
            span = reader.read_span(start, stop)
            base = reader.offsets[start]
            for i in range(start, stop):
                a = reader.offsets[i] - base
                b = reader.record_end(i) - base
                data = span[a:b]
                if not self.record(i, data):
                    return
        if self.since:
            first = self.since[0][0]
            self.v.notes.append(
                f"records #{first}..#{n - 1} after the last seal are unsealed"
                + ("" if self.v.closed else " (the recording did not close: no final seal)")
            )
        elif not self.v.closed and n:
            self.v.notes.append("no final seal: the recording did not close")
        self.v.status = "intact" if self.v.seals else "unsealed"
        if not self.v.seals:
            self.v.notes.insert(0, "no seal yet")

    def record(self, i: int, data: bytes) -> bool:
        digest = hashlib.sha256(data).digest()
        seal = is_seal(data)
        if seal is None:
            self.running.update(digest)
            self.since.append((i, digest[: self.fpb]))
            self.v.closed = False
            return True
        expected = self.running.copy().digest()
        if seal.get("digest") != expected or seal.get("seq") != self.seq:
            self.tampered(i, seal)
            return False
        self.running.update(digest)
        self.v.seals += 1
        self.v.sealed = i + 1
        self.v.digest = expected.hex()
        self.v.closed = bool(seal.get("final"))
        self.since = []
        self.last_seal = i
        self.seq += 1
        return True

    def tampered(self, i: int, seal: dict[str, Any]) -> None:
        v = self.v
        v.status = "tampered"
        seq = seal.get("seq")
        if isinstance(seq, int) and seq > self.seq:
            where = f"#{self.last_seal}" if self.last_seal is not None else "the header"
            v.first_bad = self.since[0][0] if self.since else i
            v.problem = (
                f"{seq - self.seq} seal record(s) removed between {where} and #{i} "
                f"(seal {self.seq} is missing)"
            )
            return
        if isinstance(seq, int) and seq < self.seq:
            v.first_bad = i
            v.problem = f"record #{i}: a seal inserted or moved (seal {seq} again, after {seq})"
            return
        blob = seal.get("fp")
        listed = (
            [bytes(blob[j : j + self.fpb]) for j in range(0, len(blob), self.fpb)]
            if isinstance(blob, bytes)
            else []
        )
        actual = [fp for _, fp in self.since]
        indices = [idx for idx, _ in self.since]
        matcher = difflib.SequenceMatcher(None, actual, listed, autojunk=False)
        for op, a1, a2, l1, l2 in matcher.get_opcodes():
            if op == "equal":
                continue
            at = indices[a1] if a1 < len(indices) else i
            v.first_bad = at
            if Counter(actual) == Counter(listed):
                v.problem = f"record #{at}: records reordered (#{at} is out of its sealed place)"
            elif op == "replace":
                v.problem = f"record #{at} altered"
            elif op == "delete":
                v.problem = f"record #{at} inserted ({a2 - a1} record(s) not in the seal at #{i})"
            else:
                v.problem = (
                    f"{l2 - l1} record(s) removed before #{at} (the seal at #{i} lists them)"
                )
            return
        # every record matches its fingerprint: the seal itself or what it chains to changed
        if self.last_seal is not None:
            v.first_bad = self.last_seal
            v.problem = f"record #{self.last_seal} (a seal) or the seal at #{i} altered"
        else:
            v.first_bad = i
            v.problem = f"the log header or the seal at #{i} altered"
