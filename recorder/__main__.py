"""``python -m krec.recorder`` runs the krec command line (used by wrapper kernelspecs)."""

from .cli import main

if __name__ == "__main__":
    main()
