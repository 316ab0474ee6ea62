"""docs/architecture.md's rules, checked on the source: which home may import which.

Every import in recorder/, viewer/ and server/ is read with ast, function-level ones
included, so a lazy import cannot slip past. The table below is the one in
docs/architecture.md; a test also checks that the page lists every module.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"recorder": "krec.recorder", "viewer": "krec.viewer", "server": "krec.server"}
BASE_MODULES = ("errors", "wire", "connect", "kernelspec", "units", "restart")

#: home -> the homes it may import (besides itself and "api", krec.recorder's lazy
#: public names and __version__, which every home may read)
ALLOWED: dict[str, set[str]] = {
    "api": {"base", "capture"},
    "base": {"base"},
    "log": {"base"},
    "filter": {"base", "log"},
    "check": {"base", "log", "filter"},
    "export": {"base", "log", "filter"},
    "serve": {"base", "log"},
    "capture": {"base", "log", "export"},
    "replay": {"base", "log", "capture"},
    "catalog": {"base", "log", "filter", "check", "replay"},
    "cli": {
        "base",
        "log",
        "filter",
        "check",
        "export",
        "serve",
        "capture",
        "replay",
        "catalog",
        "cli",
        "viewer",
    },  # fmt: skip
    "viewer": {"base", "log", "filter", "check", "replay"},
    "server": {"base", "capture"},
    "logfile": {"base", "log"},
    "main": {"cli"},
}
#: third-party packages only these homes (or modules) may import
RESTRICTED = {
    "textual": {"viewer"},
    "zmq": {"capture", "replay", "serve"},
    "jupyter_client": {"capture", "replay", "serve", "cli", "krec.recorder.kernelspec"},
    "pyarrow": {"catalog"},
    "duckdb": {"catalog"},
    "dask": {"catalog"},
    "distributed": {"catalog"},
    "opentelemetry": {"krec.recorder.export.otlp", "krec.recorder.capture.traces"},
    "fsspec": {"krec.recorder.log.storage", "krec.recorder.capture.upload", "catalog"},
    "s3fs": {"krec.recorder.log.storage", "krec.recorder.capture.upload", "catalog"},
}


def modules() -> dict[str, Path]:
    """Every module of krec, by dotted name."""
    found = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join((package, *parts))
            found[name.removesuffix(".__init__")] = path
    return found


def home(module: str) -> str:
    """The home (docs/architecture.md's table) a dotted module name belongs to."""
    parts = module.split(".")
    if parts[1] != "recorder":
        return parts[1]
    if len(parts) == 2:
        return "api"
    if parts[2] in BASE_MODULES:
        return "base"
    if parts[2] == "__main__":
        return "main"
    return parts[2]


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in a file, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            assert node.module is not None
            found.append((node.lineno, node.module))
            # `from krec.recorder import cli` imports the module krec.recorder.cli
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def violations(known: dict[str, Path] | None = None) -> list[str]:
    known = modules() if known is None else known
    bad = []
    for name, path in known.items():
        mine = home(name)
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        for line, target in imports(path):
            top = target.split(".")[0]
            if target.startswith("krec."):
                if target not in known:  # a name imported from a module, not a module
                    continue
                theirs = home(target)
                if theirs not in (mine, "api") and theirs not in ALLOWED[mine]:
                    bad.append(f"{where}:{line}: {mine} may not import {target} ({theirs})")
                elif theirs == "viewer" and mine == "cli" and name != "krec.recorder.cli.view":
                    bad.append(f"{where}:{line}: only recorder/cli/view.py imports the viewer")
                elif target == "krec.recorder.logfile":
                    bad.append(f"{where}:{line}: import from krec.recorder.log, not logfile")
                elif mine == "viewer" and target == "krec.recorder.log.writer":
                    bad.append(f"{where}:{line}: the viewer reads logs, it never writes one")
            elif top in RESTRICTED and not ({mine, name} & RESTRICTED[top]):
                bad.append(f"{where}:{line}: {mine} may not import {top}")
    return bad


def test_every_import_follows_the_layers() -> None:
    assert violations() == []


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The rules are not vacuous: a log module importing pyzmq, the cli or Textual is caught."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import zmq\n\ndef f():\n    from krec.recorder.cli import main\n    import textual\n"
    )
    bad = violations({**modules(), "krec.recorder.log.probe": probe})
    assert [b.split(": ", 1)[1] for b in bad] == [
        "log may not import zmq",
        "log may not import krec.recorder.cli (cli)",
        "log may not import textual",
    ]


def test_docs_list_every_module() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    listed = set()
    folder = None
    for line in text.splitlines():
        heading = re.fullmatch(r"### `([\w/]+)/`", line)
        if heading:
            folder = heading.group(1)
        item = re.match(r"- `([\w.]+\.py)`: \S", line)
        if item and folder:
            listed.add(f"{folder}/{item.group(1)}")
    actual = {str(p.relative_to(ROOT)) for p in modules().values()}
    assert sorted(actual - listed) == [], "modules docs/architecture.md does not describe"
    assert sorted(listed - actual) == [], "docs/architecture.md describes modules that are gone"


@pytest.mark.parametrize("folder", ["recorder", "viewer"])
def test_no_module_passes_500_lines(folder: str) -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / folder).rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert long == {}
