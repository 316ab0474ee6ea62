"""Connection files: read, write (0600), choose ports, and keep the secrets out of reprs."""

from __future__ import annotations

import json
import os
import random
import secrets
import socket
import tempfile
import time
from dataclasses import dataclass, field, replace
from typing import Any

from krec.recorder.errors import ConnectionFileError

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
_KNOWN = {
    "transport",
    "ip",
    "key",
    "signature_scheme",
    "kernel_name",
    "curve_publickey",
    "curve_secretkey",
    *(f"{c}_port" for c in CHANNELS),
}


@dataclass
class ConnectionInfo:
    """The contents of a Jupyter connection file.

    ``key`` and ``curve_secretkey`` are secrets: they are left out of ``repr`` and
    of ``public()``, which is what goes into a log header.
    """

    transport: str = "tcp"
    ip: str = "127.0.0.1"
    shell_port: int = 0
    iopub_port: int = 0
    stdin_port: int = 0
    control_port: int = 0
    hb_port: int = 0
    key: bytes = field(default=b"", repr=False)
    signature_scheme: str = "hmac-sha256"
    kernel_name: str = ""
    curve_publickey: bytes | None = None
    curve_secretkey: bytes | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ConnectionInfo:
        """Read a connection file; ConnectionFileError says what is wrong with it."""
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise ConnectionFileError(f"connection file {path} does not exist") from None
        except OSError as e:
            raise ConnectionFileError(f"cannot read connection file {path}: {e.strerror}") from None
        except (ValueError, UnicodeDecodeError):
            raise ConnectionFileError(f"connection file {path} is not valid JSON") from None
        if not isinstance(data, dict):
            raise ConnectionFileError(f"connection file {path} is not a JSON object")
        return cls.from_dict(data, path)

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str = "") -> ConnectionInfo:
        where = f"connection file {path}" if path else "connection info"
        missing = [f"{c}_port" for c in CHANNELS if f"{c}_port" not in data]
        if missing:
            raise ConnectionFileError(f"{where} lacks {', '.join(missing)}")
        try:
            ports = {f"{c}_port": int(data[f"{c}_port"]) for c in CHANNELS}
        except (TypeError, ValueError):
            raise ConnectionFileError(f"{where} has a port that is not a number") from None
        key = data.get("key", "")
        pub, sec = data.get("curve_publickey"), data.get("curve_secretkey")
        if bool(pub) != bool(sec):
            raise ConnectionFileError(f"{where} has only half of a CurveZMQ key pair")
        return cls(
            transport=str(data.get("transport", "tcp")),
            ip=str(data.get("ip", "127.0.0.1")),
            key=key.encode() if isinstance(key, str) else bytes(key or b""),
            signature_scheme=str(data.get("signature_scheme", "hmac-sha256")),
            kernel_name=str(data.get("kernel_name", "")),
            curve_publickey=_as_bytes(pub),
            curve_secretkey=_as_bytes(sec),
            extra={k: v for k, v in data.items() if k not in _KNOWN},
            **ports,
        )

    @property
    def curve(self) -> bool:
        return self.curve_secretkey is not None

    def port(self, channel: str) -> int:
        return int(getattr(self, f"{channel}_port"))

    def endpoint(self, channel: str, port: int | None = None) -> str:
        port = self.port(channel) if port is None else port
        if self.transport == "ipc":
            return f"ipc://{self.ip}-{port}"
        return f"{self.transport}://{self.ip}:{port}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.extra)
        data.update(
            {
                "transport": self.transport,
                "ip": self.ip,
                "key": self.key.decode(),
                "signature_scheme": self.signature_scheme,
                "kernel_name": self.kernel_name,
                **{f"{c}_port": self.port(c) for c in CHANNELS},
            }
        )
        if self.curve:
            assert self.curve_publickey is not None and self.curve_secretkey is not None
            data["curve_publickey"] = self.curve_publickey.decode("ascii")
            data["curve_secretkey"] = self.curve_secretkey.decode("ascii")
        return data

    def public(self) -> dict[str, Any]:
        """What a log header may say about the connection: never a key."""
        return {
            "transport": self.transport,
            "ip": self.ip,
            "signature_scheme": self.signature_scheme,
            "encryption": "curve" if self.curve else None,
        }

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write atomically with mode 0600 (a connection file holds the key)."""
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".krec-", suffix=".json")
        except OSError as e:
            raise ConnectionFileError(
                f"cannot write connection file {path}: {e.strerror}"
            ) from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.to_dict(), f, indent=1)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except OSError as e:
            os.unlink(tmp)
            raise ConnectionFileError(
                f"cannot write connection file {path}: {e.strerror}"
            ) from None

    def with_free_ports(self) -> ConnectionInfo:
        """A copy with a fresh free port for every channel (on the same ip)."""
        ports = free_ports(self.ip, len(CHANNELS), self.transport)
        return replace(self, **{f"{c}_port": p for c, p in zip(CHANNELS, ports, strict=True)})


def default_connection_file(name: str) -> str:
    """A new path in the Jupyter runtime directory: kernel-krec-NAME-<hex>.json."""
    from jupyter_core.paths import jupyter_runtime_dir

    return os.path.join(jupyter_runtime_dir(), f"kernel-krec-{name}-{os.urandom(4).hex()}.json")


def new_key() -> bytes:
    return secrets.token_hex(32).encode()


def free_ports(ip: str, count: int, transport: str = "tcp") -> list[int]:
    """``count`` distinct ports that are free right now on ``ip``, for a kernel to bind.

    The kernel binds them a moment later, so they are drawn from below the system's
    ephemeral range: a port the OS hands out (to an outgoing connection, or to a
    bind on port 0 such as another kernel manager's) cannot take one in between.
    """
    if transport == "ipc":
        ports, n = [], 1
        while len(ports) < count:
            if not os.path.exists(f"{ip}-{n}"):
                ports.append(n)
            n += 1
        return ports
    low, high = _quiet_range()
    rng = random.SystemRandom()
    ports: list[int] = []
    for _ in range(count * 50):
        if len(ports) == count:
            break
        port = rng.randrange(low, high)
        if port not in ports and _can_bind(ip, port) and _reserve(port):
            ports.append(port)
    while len(ports) < count:  # no luck below the ephemeral range: let the OS choose
        port = _any_port(ip)
        if port not in ports:
            ports.append(port)
    return ports


def _quiet_range() -> tuple[int, int]:
    """Ports below the ephemeral range (Linux: ip_local_port_range), at most 10000 of them."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            first = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        first = 32768
    high = max(2048, first)
    return max(1024, high - 10000), high


# A port chosen here is bound by a kernel only a second or more later; meanwhile another krec
# process (a concurrent replay, a batch worker) could find it free and choose it too. Each
# choice leaves a reservation file that other krec processes respect for this long.
_RESERVATION_SECONDS = 120.0


def _reserve(port: int) -> bool:
    """Claim ``port`` for this process unless another krec process claimed it recently."""
    folder = os.path.join(tempfile.gettempdir(), f"krec-ports-{os.getuid()}")
    path = os.path.join(folder, str(port))
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            if time.time() - os.stat(path).st_mtime < _RESERVATION_SECONDS:
                return False
            os.utime(path)  # a stale claim: take it over
            return True
        os.close(fd)
    except OSError:
        return True  # no shared temporary directory: the bind check alone decides
    return True


def _can_bind(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET) as s:
        try:
            s.bind((ip, port))
        except OSError:
            return False
    return True


def _any_port(ip: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET) as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def _as_bytes(value: Any) -> bytes | None:
    if not value:
        return None
    return value.encode("ascii") if isinstance(value, str) else bytes(value)
