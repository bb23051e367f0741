"""Convergence of dropout to its limit dynamics in the five phases.

Full default: widths 100-1600, 5 repeats; ``--quick`` for a one-minute version, ``--replot`` to
redraw from the cached results. Same as ``python -m meanfield_dropout reproduce convergence``.
"""
import sys

from meanfield_dropout.reproduce import script_main

if __name__ == "__main__":
    sys.exit(script_main("convergence"))
