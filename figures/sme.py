"""The SME paper's figures: loss trajectories, weak-error orders, Hessian alignment.

Full default: the ``sme``, ``sme-order`` and ``alignment`` commands' defaults; ``--quick`` for
a one-minute version. Same as ``python -m meanfield_dropout reproduce sme``.
"""
import sys

from meanfield_dropout.reproduce import script_main

if __name__ == "__main__":
    sys.exit(script_main("sme"))
