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

# Numba's OpenMP threads otherwise spin while waiting; on a machine whose cores are busy
# that made parallel kernels up to 100x slower. Set before Numba starts its threads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .data import Dataset, teacher_student
from .engine import VARIANTS, DivergenceError, SimulationResult, init_particles, simulate
from .metrics import coupled_rms, predictor_distance, wasserstein2
from .network import loss_value, predict
from .noise import ExplicitNoise

__all__ = ["__version__", "VARIANTS", "Dataset", "DivergenceError", "ExplicitNoise",
           "SimulationResult", "coupled_rms",
           "init_particles", "loss_value", "predict", "predictor_distance", "simulate",
           "teacher_student", "wasserstein2"]
