"""krec.recorder: record, read, filter and replay Jupyter kernel sessions.

This package never imports Textual; the terminal UI lives in ``krec.viewer``.
"""

from __future__ import annotations

__version__ = "0.1.0.dev0"

from .errors import KrecError

__all__ = ["KrecError", "__version__"]
