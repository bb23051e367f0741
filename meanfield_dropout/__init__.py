"""meanfield-dropout: see what dropout does to wide two-layer networks.

Finite-width particle engine (:func:`simulate`), distances between particle clouds
(:mod:`meanfield_dropout.metrics`), the named data sets (:data:`DATASETS`: the paper's
``teacher-student`` problem, the small ``toy`` one, ``mnist47``; :func:`load_dataset`) and any
result file read back by :func:`load` (written by :func:`save`). The package never imports
:mod:`phase_diagram`, which builds on it.
"""
import os
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("meanfield-dropout")
except PackageNotFoundError:        # run from a source tree that is not installed
    __version__ = "0+unknown"

# How long Numba's OpenMP threads spin at the end of a parallel region before they sleep
# (read when Numba starts its threads). libgomp's default spin (300 000) made a 5000-neuron
# step 5-10x slower on a 2-core machine with one other busy process; sleeping at once
# (OMP_WAIT_POLICY=PASSIVE) made it 4x slower on an idle virtual machine, where waking a
# sleeping core is slow. A short spin is within 1.5x of the better of the two in both cases.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")

from .data import DATASETS, Dataset, load_dataset, teacher_student, toy
from .engine import VARIANTS, DivergenceError, SimulationResult, simulate
from .metrics import coupled_rms, predictor_distance, wasserstein2
from .network import init_particles, loss_value, predict
from .noise import ExplicitNoise

from .runtime.results import save

__all__ = ["__version__", "VARIANTS", "DATASETS", "Dataset", "DivergenceError", "ExplicitNoise",
           "SimulationResult", "coupled_rms", "init_particles", "load", "load_dataset",
           "loss_value", "predict", "predictor_distance", "save", "simulate", "teacher_student",
           "toy", "wasserstein2"]


def load(path, expected=None):
    """Read any result file of this package: a result written by :func:`save`, a command's
    ``.npz``
    (``simulate --out``, ``converge --data-out``) or an experiment's cache.

    The modules that define the result classes are imported first, so no internal module
    needs importing (the phase-diagram results: :func:`phase_diagram.load`).

    Parameters
    ----------
    path : str or path-like
    expected : type, optional
        The class the file must hold.

    Raises
    ------
    ValueError
        One line naming the file (:func:`meanfield_dropout.runtime.results.load`).
    """
    from . import convergence, experiments, limits  # noqa: F401 (register result classes)
    from .sme import alignment, weak_order  # noqa: F401
    from .runtime import results
    return results.load(path, expected)
