"""Dropout variants on two digit classes (4 vs 7), the phase-diagram paper's MNIST experiment.

Full default: width 4000, q in {0.6, 0.7, 0.8, 0.9}, 4000 steps, 10 repeats on scikit-learn's
digits (``--mnist PATH`` for a local MNIST .npz); ``--quick`` for a one-minute version,
``--replot`` to redraw from the cached results. Same as ``python -m meanfield_dropout reproduce
images_variants --out-dir figures``.
"""
import sys
from pathlib import Path

from meanfield_dropout.cli.main import main

if __name__ == "__main__":
    here = str(Path(__file__).resolve().parent)
    sys.exit(main(["reproduce", "images_variants", "--out-dir", here, *sys.argv[1:]]))
