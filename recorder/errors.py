"""The one exception family krec raises; the CLI turns each into a one-line message, exit 2."""

from __future__ import annotations


class KrecError(Exception):
    """Base of every error krec reports to a user."""


class LogFormatError(KrecError):
    """A file is not a krec log, is from a newer krec, or cannot be read."""


class ConnectionFileError(KrecError):
    """A connection file is missing, unreadable or incomplete."""


class KernelSpecError(KrecError):
    """A kernel name is unknown or its kernelspec cannot be used."""


class ProxyError(KrecError):
    """The proxy could not bind or connect its sockets."""


class FilterError(KrecError):
    """A filter expression does not parse; carries the offending position."""

    def __init__(self, message: str, expression: str = "", position: int = -1) -> None:
        self.expression = expression
        self.position = position
        super().__init__(message)

    def __str__(self) -> str:
        base = super().__str__()
        if self.position >= 0 and self.expression:
            return f"{base} at position {self.position + 1}: {self.expression!r}"
        return base
