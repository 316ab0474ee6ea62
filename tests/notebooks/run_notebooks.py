"""Execute notebooks with nbclient, as a person or a CI job would: the frontend krec tests record.

    python run_notebooks.py OUT_DIR NOTEBOOK...

Each notebook runs in its own folder (nbclient starts its kernel there) and is
written, executed, to OUT_DIR under its own name. KREC_LOG_NAME is set to the
notebook's name, so under `krec record -o DIR --` each kernel's log is
DIR/<notebook name>.krec. Interrupt.ipynb runs as nbclient's own tests run it:
a short timeout that interrupts the endless cell, errors allowed; Output.ipynb
with a short timeout too (see OPTIONS).
"""

from __future__ import annotations

import os
import sys

import nbformat
from nbclient import NotebookClient

OPTIONS: dict[str, dict[str, object]] = {
    "Interrupt": {"timeout": 3, "interrupt_on_timeout": True, "allow_errors": True},
    # after clear_output(wait=True) inside an Output widget nbclient waits out its whole
    # timeout for the cell's last output, then goes on: keep that wait short
    "Output": {"timeout": 10},
}


def main(argv: list[str]) -> int:
    out_dir, paths = argv[0], argv[1:]
    os.makedirs(out_dir, exist_ok=True)
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        nb = nbformat.read(path, as_version=4)
        os.environ["KREC_LOG_NAME"] = stem
        options = {"timeout": 120, **OPTIONS.get(stem, {})}
        folder = os.path.dirname(os.path.abspath(path))
        NotebookClient(nb, resources={"metadata": {"path": folder}}, **options).execute()
        nbformat.write(nb, os.path.join(out_dir, f"{stem}.ipynb"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
