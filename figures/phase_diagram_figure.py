"""Theoretical phase diagram with the phases measured by the example scan overlaid.

Full default: ``examples/phase_scan.toml`` into ``scan_runs/phase``; ``--quick`` for a
one-minute version, ``--replot`` (with ``--scan-dir DIR``) to redraw from an existing scan.
Same as ``python -m phase_diagram reproduce phase_diagram --out-dir figures``. (Not named
``phase_diagram.py``: as a script it would shadow the ``phase_diagram`` package.)
"""
import sys
from pathlib import Path

from phase_diagram.cli.main import main

if __name__ == "__main__":
    here = str(Path(__file__).resolve().parent)
    sys.exit(main(["reproduce", "phase_diagram", "--out-dir", here, *sys.argv[1:]]))
