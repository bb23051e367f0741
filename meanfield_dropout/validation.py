"""Argument checks shared by every public entry point.

Each check raises ``ValueError`` naming the argument and its allowed range, so bad input
never reaches a kernel (where it would give a deep traceback or a silent NaN).
"""
import functools
import math
import numbers
import os
import stat
import warnings
from pathlib import Path

import numpy as np

#: Smallest keep probability: masks are 1/q, finite for every q ≥ this.
MIN_KEEP_PROB = 1e-300


def renamed_keywords(**renames):
    """Decorator: a function, or a dataclass (its ``__init__``), also accepts each old keyword
    spelling ``old="new"``, with a ``FutureWarning`` naming the new one (``TypeError`` when
    both are given). ``renames`` is kept as the ``renamed`` attribute of the wrapper, so that
    the result codec reads a cache saved with an old field name."""
    def decorate(target):
        function = target.__init__ if isinstance(target, type) else target

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            return function(*args, **new_spellings(kwargs, renames, stacklevel=3))

        wrapper.renamed = dict(renames)
        if isinstance(target, type):
            target.__init__ = wrapper
            return target
        return wrapper
    return decorate


def new_spellings(kwargs, renames, stacklevel=2):
    """``kwargs`` with each old keyword of ``renames`` (``{old: new}``) under its new name, a
    ``FutureWarning`` for each (``TypeError`` when both spellings are given)."""
    kwargs = dict(kwargs)
    for old, new in renames.items():
        if old in kwargs:
            if new in kwargs:
                raise TypeError(f"give {new}= only ({old}= is its old spelling)")
            warnings.warn(f"{old}= is now {new}=; the old spelling will be removed",
                          FutureWarning, stacklevel=stacklevel)
            kwargs[new] = kwargs.pop(old)
    return kwargs


def check_keep_prob(value, name="keep_prob"):
    """Keep probability q (the papers' q, or p in the SME paper) must lie in (0, 1].

    Masks take the value 1/q, so q must also be large enough for 1/q to be a finite float
    (q ≥ :data:`MIN_KEEP_PROB`).
    """
    value = check_real(value, name)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    if value < MIN_KEEP_PROB:
        raise ValueError(f"{name} must be in [{MIN_KEEP_PROB:g}, 1] (dropout masks are "
                         f"1/{name}, which must be a finite number), got {value!r}")
    return value


def check_positive(value, name):
    """A finite, strictly positive real (learning rates, times, constants)."""
    value = check_real(value, name)
    if not value > 0.0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def check_nonnegative(value, name):
    """A finite real >= 0."""
    value = check_real(value, name)
    if not value >= 0.0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def check_real(value, name):
    """A finite real number, returned as ``float``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return value


def check_int(value, name, low=None, high=None):
    """An integer in ``[low, high]`` (either bound optional)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value}")
    return value


def check_bool(value, name):
    """``True`` or ``False`` (a NumPy bool too), returned as ``bool``; nothing else."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_choice(value, name, allowed):
    """One of a fixed set of names."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")
    return value


def check_array(value, name, ndim, dtype=np.float64, shape=None):
    """A finite, real array with ``ndim`` dimensions, converted to ``dtype`` (C-contiguous).

    ``shape`` may fix some dimensions: ``None`` entries are free.
    """
    try:
        complex_values = np.iscomplexobj(value)
    except (TypeError, ValueError):          # ragged or not numeric: reported below
        complex_values = False
    if complex_values:
        raise ValueError(f"{name} must be real, got complex values")
    try:
        arr = np.ascontiguousarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array: {exc}") from None
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if shape is not None:
        for axis, (want, got) in enumerate(zip(shape, arr.shape)):
            if want is not None and want != got:
                raise ValueError(
                    f"{name} has shape {arr.shape}; axis {axis} must have length {want}")
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def seed_sequence(seed, name="seed"):
    """``seed`` (an int ≥ 0 or a ``SeedSequence``) as a fresh ``numpy.random.SeedSequence``.

    ``SeedSequence.spawn`` counts the children it has already given, so spawning twice from
    one object yields different streams. A copy with the same entropy and spawn key makes
    every stream spawned from it a function of the seed alone, however often it is reused.
    """
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key,
                                      pool_size=seed.pool_size)
    return np.random.SeedSequence(check_int(seed, name, low=0))


def seed_record(seed):
    """The JSON record of a seed: the int itself, or a ``SeedSequence``'s entropy and key."""
    if isinstance(seed, np.random.SeedSequence):
        return {"entropy": str(seed.entropy), "spawn_key": list(seed.spawn_key)}
    return seed


def _writable_directory(directory, target):
    """ValueError unless ``directory`` (to write ``target`` in) is, or can be created as, a
    writable directory: its first existing ancestor must be one (a read-only file system
    counts as not writable)."""
    ancestor = directory
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"cannot write {target}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {target}: directory {ancestor} is not writable")


def figure_formats():
    """The file formats matplotlib writes (``png``, ``pdf``, ``svg``, ...)."""
    from matplotlib.backend_bases import FigureCanvasBase
    return FigureCanvasBase.get_supported_filetypes()


def _prefix(name):
    return f"{name}: " if name else ""


def check_output_file(path, name=None, suffix=None):
    """An output file that can be written, checked before any work; returns a ``Path``.

    ``suffix``: appended when the name lacks it (``".npz"``), or ``"figure"``: a format
    matplotlib writes, ``.png`` appended when there is none. The file must not be a directory
    or read-only, and its first existing ancestor must be a writable directory (missing
    parents are created by the writer). ``ValueError`` starting with ``name`` otherwise (the
    command lines give none: argparse names the option).
    """
    at = _prefix(name)
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise ValueError(f"{at}expected a file path, got {path!r}")
    text = str(path)
    path = Path(path)
    if path.is_dir() or text.endswith(os.sep):
        raise ValueError(f"{at}{text} is a directory; give a file path")
    if suffix == "figure":
        formats = figure_formats()
        if not path.suffix:
            path = path.with_name(path.name + ".png")
        elif path.suffix[1:].lower() not in formats:
            raise ValueError(f"{at}{text}: unknown figure format {path.suffix!r}; use one "
                             f"of {', '.join('.' + f for f in sorted(formats))}")
    elif suffix and path.suffix != suffix:
        path = path.with_name(path.name + suffix)
    if path.is_dir():
        raise ValueError(f"{at}{path} is a directory; give a file path")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{at}cannot write {path}: the file is read-only")
    try:
        _writable_directory(path.parent, path)
    except ValueError as exc:
        raise ValueError(f"{at}{exc}") from None
    return path


def check_output_dir(path, name=None):
    """An output directory: an existing writable one, or one that can be created; a ``Path``
    (``ValueError`` starting with ``name`` otherwise, as in :func:`check_output_file`)."""
    at = _prefix(name)
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise ValueError(f"{at}expected a directory path, got {path!r}")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{at}{path} exists and is not a directory")
    try:
        _writable_directory(path, path)
    except ValueError as exc:
        raise ValueError(f"{at}{exc}") from None
    return path


#: Largest data file read whole (inputs of ``locate``, MNIST archives and IDX files).
MAX_DATA_FILE_BYTES = 1 << 32


def check_data_file(path, what=None, max_bytes=MAX_DATA_FILE_BYTES):
    """A file given as data: an existing, readable regular file of at most ``max_bytes``.

    Checked with ``stat`` before it is opened, so a FIFO or a device is refused instead of
    blocking the reader. Returns a ``Path``; a one-line ``ValueError`` naming ``what`` (such
    as ``"data file"``; none for a command line, where argparse names the option) and the file
    otherwise.
    """
    at = f"{what} " if what else ""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise ValueError(f"{what or 'file'} must be a file path, got {path!r}")
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such {what or 'file'}") from None
    except OSError as exc:
        raise ValueError(f"{at}{path}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = ("a directory" if stat.S_ISDIR(info.st_mode) else "a FIFO"
                if stat.S_ISFIFO(info.st_mode) else "a socket or a device")
        raise ValueError(f"{at}{path} is not a regular file ({kind})")
    if not os.access(path, os.R_OK):
        raise ValueError(f"{at}{path} is not readable")
    if info.st_size > max_bytes:
        raise ValueError(f"{at}{path} holds {info.st_size} bytes, more than the "
                         f"{max_bytes} read as data")
    return path
