"""meanfield-dropout: see what dropout does to wide two-layer networks.

Finite-width particle engine (:func:`simulate`), distances between particle clouds
(:mod:`meanfield_dropout.metrics`), the paper's teacher–student data
(:func:`teacher_student`). The package never imports :mod:`phase_diagram`, which builds on it.
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

from .data import Dataset, teacher_student
from .engine import VARIANTS, DivergenceError, SimulationResult, init_particles, simulate
from .metrics import coupled_rms, predictor_distance, wasserstein2
from .network import loss_value, predict
from .noise import ExplicitNoise

__all__ = ["__version__", "VARIANTS", "Dataset", "DivergenceError", "ExplicitNoise",
           "SimulationResult", "coupled_rms",
           "init_particles", "loss_value", "predict", "predictor_distance", "simulate",
           "teacher_student", "wasserstein2"]
