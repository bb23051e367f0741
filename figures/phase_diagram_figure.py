"""Theoretical phase diagram with the phases measured by the example scan overlaid.

Full default: ``examples/phase_scan.toml`` into ``scan_runs/phase`` (or plot ``--scan-dir
DIR``); ``--quick`` for a one-minute version, ``--replot`` to redraw from the cached results.
Same as ``python -m meanfield_dropout reproduce phase_diagram``. (Not named
``phase_diagram.py``: as a script it would shadow the ``phase_diagram`` package.)
"""
import sys

from meanfield_dropout.reproduce import script_main

if __name__ == "__main__":
    sys.exit(script_main("phase_diagram"))
