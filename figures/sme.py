"""The SME paper's figures: loss trajectories, weak-error orders, Hessian alignment.

Full default: the ``sme``, ``sme-order`` and ``alignment`` commands' defaults; ``--quick`` for
a one-minute version, ``--replot`` to redraw from ``sme.npz``. Same as
``python -m meanfield_dropout reproduce sme --out-dir figures``.
"""
import sys
from pathlib import Path

from meanfield_dropout.cli.main import main

if __name__ == "__main__":
    here = str(Path(__file__).resolve().parent)
    sys.exit(main(["reproduce", "sme", "--out-dir", here, *sys.argv[1:]]))
