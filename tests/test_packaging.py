"""Packaging: every package on disk is installed (pyproject lists them one by one, because
recorder/ and viewer/ are mapped to krec.recorder and krec.viewer)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = config["package-dir"]
    on_disk = set()
    for dotted, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            on_disk.add(".".join([dotted, *rel.parts]) if rel.parts else dotted)
    assert on_disk <= listed, f"not installed: {sorted(on_disk - listed)}"


def test_recorder_never_imports_textual():
    """The layers: recorder/ never imports Textual, and reaches the viewer only in `krec view`."""
    for path in (ROOT / "recorder").rglob("*.py"):
        text = path.read_text()
        assert "import textual" not in text and "from textual" not in text, path
        if path.name != "view.py":
            assert "from krec.viewer" not in text and "import krec.viewer" not in text, path


def test_krec_provisioner_and_the_server_extension_are_installed():
    from importlib.metadata import entry_points

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["entry-points"]["jupyter_client.kernel_provisioners"]
    assert declared == {"krec-provisioner": "krec.recorder.capture.provisioner:KrecProvisioner"}
    found = entry_points(group="jupyter_client.kernel_provisioners", name="krec-provisioner")
    assert found, "the entry point is not installed: pip install -e . --no-deps"
    from krec.recorder.capture.provisioner import KrecProvisioner

    assert next(iter(found)).load() is KrecProvisioner
    import krec.server

    assert krec.server._jupyter_server_extension_points() == [{"module": "krec.server"}]
