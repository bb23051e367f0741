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
import math
from pathlib import Path

import numpy as np

from ..runtime.memory import check_memory
from ..runtime.results import read_npz
from ..validation import check_array, check_int
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


def load_dataset(data, *, seed=0, copies=1):
    """The data set ``data`` names, as a :class:`~.synthetic.Dataset`.

    Parameters
    ----------
    data : str, path, Dataset or (inputs, targets)
        A name of :data:`DATASETS`, an ``.npz`` file (``inputs``, ``targets``, optional
        ``val_inputs``, ``val_targets``), a Dataset or a pair.
    seed : int
        Seed of a named data set (the teacher and points, or MNIST's split).
    copies : int
        Float64 copies of the arrays the caller will hold (one per worker process): their
        memory is checked before they are read or converted.

    Returns
    -------
    Dataset
        Validation fields None when the source has none.

    Raises
    ------
    ValueError
        One line naming the unknown name, or the file or argument and what is wrong: a file
        that is missing, not a regular file (a FIFO is refused without being opened), too
        large, not an ``.npz`` archive, truncated or without ``inputs`` and ``targets``;
        arrays of the wrong shapes, complex (never cast to real), not finite, or targets all
        zero; :class:`~meanfield_dropout.runtime.memory.MemoryLimitError` when ``copies``
        float64 copies would not fit in memory.
    """
    if isinstance(data, str) and data in DATASETS:
        named = _named(data, seed)
        return Dataset(named.inputs, named.targets, named.val_inputs, named.val_targets)
    if isinstance(data, Dataset):
        return _checked("data", copies, *data)
    if isinstance(data, tuple) and len(data) == 2:
        return _checked("data", copies, *data, None, None)
    if not isinstance(data, (str, Path)) or Path(data).suffix != ".npz":
        raise ValueError(f"data must be one of {', '.join(DATASETS)} or an .npz file, got "
                         f"{str(data)!r}")
    path = Path(data)

    def present(names):
        if not {"inputs", "targets"} <= set(names):
            raise ValueError(f"{path} needs arrays 'inputs' and 'targets' (data file), has "
                             f"{sorted(names)}")
        return [key for key in _FIELDS if key in names]

    arrays = read_npz(path, "data file", present)
    return _checked(f"data file {path}", copies, *(arrays.get(key) for key in _FIELDS))


#: The arrays of a data file, in the order of :class:`~.synthetic.Dataset`'s fields.
_FIELDS = ("inputs", "targets", "val_inputs", "val_targets")


def _checked(where, copies, inputs, targets, val_inputs, val_targets):
    """A Dataset of float arrays: (m, d) inputs and (m,) targets, and the same for the
    validation pair when both are given; real and finite, targets not all zero. Shapes and
    memory are checked before anything is converted; errors start with ``where``."""
    pairs = [("inputs", inputs, "targets", targets)]
    if (val_inputs is None) != (val_targets is None):
        raise ValueError(f"{where}: give both val_inputs and val_targets, or neither")
    if val_inputs is not None:
        pairs.append(("val_inputs", val_inputs, "val_targets", val_targets))
    size = 0
    for x_name, x, y_name, y in pairs:
        x_shape, y_shape = np.shape(x), np.shape(y)
        if len(x_shape) != 2 or y_shape != x_shape[:1] or min(x_shape) < 1 \
                or x_shape[1] != np.shape(inputs)[1]:
            raise ValueError(f"{where}: {x_name} must be (m, d) with m, d >= 1 and {y_name} "
                             f"(m,), with d that of inputs, got {x_shape} and {y_shape}")
        size += math.prod(x_shape) + y_shape[0]
    (m, d), copies = np.shape(inputs), check_int(copies, "copies", low=1)
    check_memory(8 * size * copies, f"{where} ({m} rows of {d} inputs, {copies} "
                 f"cop{'y' if copies == 1 else 'ies'})", "give fewer data rows or workers")
    try:
        arrays = [check_array(value, name, len(np.shape(value))) for pair in pairs
                  for name, value in (pair[:2], pair[2:])]
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    if not arrays[1].any():
        raise ValueError(f"{where}: targets are all zero")
    return Dataset(*arrays, *([None, None] if len(pairs) == 1 else []))
