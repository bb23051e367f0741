"""Convergence of dropout to its limit dynamics in the five phases.

Full default: widths 100-1600, 5 repeats; ``--quick`` for a one-minute version, ``--replot`` to
redraw from the cached results. Same as ``python -m phase_diagram reproduce convergence``.
"""
import sys

from phase_diagram.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "convergence", *sys.argv[1:]]))
