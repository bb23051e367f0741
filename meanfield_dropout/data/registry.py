"""The named data sets: one registry for every command and function that simulates.

=================== ==========================================================================
``teacher-student`` the paper's problem (Chizat, Marion & Yesbay, 2025, Figure 1): Gaussian
                    inputs, d = 20, m = 500 training and 500 validation points, a random
                    ReLU teacher of 15 units (:func:`~.synthetic.teacher_student`); the
                    default of ``simulate``, ``demo`` and ``reproduce teacher_student``.
``toy``             a small smooth problem: the same construction with d = 4, m = 40 and 4
                    teacher units (:func:`~.synthetic.toy`), on which a width-2000 cell of a
                    convergence study takes about a second; the default of ``converge``,
                    ``scan``, ``locate`` and ``map``, whose networks use tanh (the limit
                    theorems assume a smooth activation).
``mnist47``         MNIST digits 4 (+1) vs 7 (−1), the training split of the images bundled
                    with the ``data`` extra (:func:`~.mnist.mnist47`: 600 images, d = 784).
=================== ==========================================================================

Besides a name, ``data`` may be an ``.npz`` file with arrays ``inputs`` (m, d) and ``targets``
(m,) (optionally ``val_inputs``, ``val_targets``), a :class:`~.synthetic.Dataset` or a pair
(inputs, targets). :func:`data_label` says which data a result ran on.
"""
import functools
from pathlib import Path

import numpy as np

from .mnist import mnist47
from .synthetic import Dataset, teacher_student, toy

#: Name → (function of ``seed`` returning the data set, one-line description).
DATASETS = {
    "teacher-student": (teacher_student,
                        "the paper's teacher-student problem: d = 20, m = 500, ReLU teacher "
                        "of 15 units"),
    "toy": (toy, "small teacher-student problem: d = 4, m = 40, ReLU teacher of 4 units"),
    "mnist47": (mnist47, "MNIST 4 vs 7, bundled training split: m = 600, d = 784"),
}
#: Text of a ``--data`` option's help.
DATA_HELP = ("a named data set (" + "; ".join(f"{name}: {text}" for name, (_, text)
                                                 in DATASETS.items())
             + ") or an .npz FILE with arrays inputs (m, d) and targets (m,)")


def data_label(data):
    """A short text naming ``data`` for outputs: the registry name, the file, or the shape.

    Parameters
    ----------
    data : str, path, Dataset or (inputs, targets)
    """
    if isinstance(data, (str, Path)):
        return str(data)
    inputs = data.inputs if isinstance(data, Dataset) else data[0]
    return f"arrays (m = {np.shape(inputs)[0]}, d = {np.shape(inputs)[1]})"


@functools.lru_cache(maxsize=8)
def _named(name, seed):
    return DATASETS[name][0](seed=seed)


def load_dataset(data, *, seed=0):
    """The data set ``data`` names, as a :class:`~.synthetic.Dataset`.

    Parameters
    ----------
    data : str, path, Dataset or (inputs, targets)
        A name of :data:`DATASETS`, an ``.npz`` file (``inputs``, ``targets``, optional
        ``val_inputs``, ``val_targets``), a Dataset (returned as it is) or a pair.
    seed : int
        Seed of a named data set (the teacher and points, or MNIST's split).

    Returns
    -------
    Dataset
        Validation fields None when the source has none.

    Raises
    ------
    ValueError
        One line naming the unknown name or the unreadable file.
    """
    if isinstance(data, Dataset):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        return _checked(*data, None, None)
    if isinstance(data, str) and data in DATASETS:
        named = _named(data, seed)
        return Dataset(named.inputs, named.targets, named.val_inputs, named.val_targets)
    if not isinstance(data, (str, Path)) or Path(data).suffix != ".npz":
        raise ValueError(f"data must be one of {', '.join(DATASETS)} or an .npz file, got "
                         f"{str(data)!r}")
    path = Path(data)
    try:
        with np.load(path) as archive:
            arrays = [archive[key] if key in archive else None
                      for key in ("inputs", "targets", "val_inputs", "val_targets")]
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read data file {path}: {exc}") from None
    if arrays[0] is None or arrays[1] is None:
        raise ValueError(f"data file {path} needs arrays 'inputs' and 'targets'")
    return _checked(*arrays)


def _checked(inputs, targets, val_inputs, val_targets):
    """A Dataset of float arrays, (m, d) inputs and (m,) targets, finite, targets not all 0."""
    inputs, targets = np.asarray(inputs, dtype=float), np.asarray(targets, dtype=float)
    if inputs.ndim != 2 or targets.shape != (inputs.shape[0],) or inputs.shape[0] < 1:
        raise ValueError(f"data inputs must be (m, d) and targets (m,), got {inputs.shape} "
                         f"and {targets.shape}")
    if not (np.isfinite(inputs).all() and np.isfinite(targets).all()) or not targets.any():
        raise ValueError("data must be finite with targets not all zero")
    if val_inputs is not None and val_targets is not None:
        val_inputs, val_targets = (np.ascontiguousarray(val_inputs, dtype=float),
                                   np.ascontiguousarray(val_targets, dtype=float))
    else:
        val_inputs = val_targets = None
    return Dataset(np.ascontiguousarray(inputs), np.ascontiguousarray(targets), val_inputs,
                   val_targets)
