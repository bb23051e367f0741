"""Convergence of dropout to its limit dynamics in the five phases.

Full default: widths 100-1600, 5 repeats; ``--quick`` for a one-minute version, ``--replot`` to
redraw from the cached results. Same as
``python -m phase_diagram reproduce convergence --out-dir figures``.
"""
import sys
from pathlib import Path

from phase_diagram.cli.main import main

if __name__ == "__main__":
    here = str(Path(__file__).resolve().parent)
    sys.exit(main(["reproduce", "convergence", "--out-dir", here, *sys.argv[1:]]))
