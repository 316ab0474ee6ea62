"""``python -m krec.recorder`` runs the krec command line (used by wrapper kernelspecs)."""

from krec.recorder.cli import main

if __name__ == "__main__":
    main()
