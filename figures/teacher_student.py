"""Teacher–student experiment of the phase-diagram paper (Figure 1).

Full settings (widths 200–5000, 10 repeats, 1000 steps) by default; ``--quick`` for a
one-minute version, ``--replot`` to redraw from ``teacher_student.npz``. Same as
``python -m meanfield_dropout reproduce teacher_student --out-dir figures``.
"""
import sys
from pathlib import Path

from meanfield_dropout.cli.main import main

if __name__ == "__main__":
    here = str(Path(__file__).resolve().parent)
    sys.exit(main(["reproduce", "teacher_student", "--out-dir", here, *sys.argv[1:]]))
