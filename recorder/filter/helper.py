"""A helper process for big scans: ``python -m krec.recorder.filter.helper``.

Reads one pickled job from stdin (the log's path, the first record index, the
records' offsets, where the last one ends, and the prepared filter tree), scans
those records, and writes the matching indexes (uint64, native order) to stdout.
A separate program rather than multiprocessing, so that nothing depends on how
the parent was started (a console script, ``python -``, a Textual app...).
"""

from __future__ import annotations

import array
import pickle
import sys


def main() -> None:
    from krec.recorder.filter.scan import scan_part

    path, lo, offsets, end, tree = pickle.loads(sys.stdin.buffer.read())
    local: array.array[int] = array.array("Q")
    local.frombytes(offsets)
    found = scan_part(path, lo, local, end, tree)
    sys.stdout.buffer.write(found.tobytes())
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
