"""The teacher–student regression task of the phase-diagram paper's Figure 1 experiment, and
the small problem of the convergence studies built the same way (:func:`toy`)."""
import math
from typing import NamedTuple

import numpy as np

from ..validation import check_int, seed_sequence


class Dataset(NamedTuple):
    """Train and validation data: inputs (m, d), targets (m,)."""

    inputs: np.ndarray
    targets: np.ndarray
    val_inputs: np.ndarray
    val_targets: np.ndarray


def teacher_student(*, dim=20, data_points=500, teacher_width=15, seed=0):
    """Gaussian inputs labelled by a random ReLU teacher, as in the paper's experiment.

    Inputs z ~ N(0, I_d); teacher y(z) = Σ_k c_k relu(v_k·z) / √K with v_k ~ N(0, I/d),
    c_k ~ N(0, 1), K = ``teacher_width``. A validation set of the same size is drawn from
    the same distribution.

    Parameters
    ----------
    dim : int
        Input dimension d (paper: 20).
    data_points : int
        Training points m, and validation points (paper: 500 each).
    teacher_width : int
        Teacher units K (paper: 15).
    seed : int or numpy.random.SeedSequence

    Returns
    -------
    Dataset
    """
    dim = check_int(dim, "dim", low=1)
    data_points = check_int(data_points, "data_points", low=1)
    teacher_width = check_int(teacher_width, "teacher_width", low=1)
    rng = np.random.default_rng(seed_sequence(seed))
    first = rng.standard_normal((teacher_width, dim)) / math.sqrt(dim)
    second = rng.standard_normal(teacher_width)

    def teacher(z):
        return np.maximum(z @ first.T, 0.0) @ second / math.sqrt(teacher_width)

    train = rng.standard_normal((data_points, dim))
    val = rng.standard_normal((data_points, dim))
    return Dataset(train, teacher(train), val, teacher(val))


def toy(*, seed=0):
    """The small smooth problem of the convergence studies, scans, ``locate`` and the maps.

    :func:`teacher_student` with d = 4, m = 40 training (and 40 validation) points and 4
    teacher units: small enough that a width-2000 cell of
    :func:`~meanfield_dropout.convergence.measure_distances` takes about a second. Named
    ``toy`` in :data:`~meanfield_dropout.data.registry.DATASETS`; not the paper's problem.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence

    Returns
    -------
    Dataset
    """
    return teacher_student(dim=4, data_points=40, teacher_width=4, seed=seed)
