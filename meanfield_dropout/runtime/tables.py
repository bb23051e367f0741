"""Results as tables: a compact ``repr`` of every result object and tidy pandas DataFrames.

* :func:`compact_repr` — ``ClassName(field=..., ...)`` with shapes for arrays, keys for dicts
  and key numbers, never the arrays themselves; result classes use it as ``__repr__``;
* :func:`frame` — a tidy :class:`pandas.DataFrame` from rows (one row per observation: a
  variant or limit × step or time × width × repeat, as the result's quantity demands); the
  ``to_frame()`` methods of the results build on it;
* :func:`write_csv` — a table as a CSV file (the ``--csv`` options of ``scan``, ``map`` and
  ``locate``).

pandas is optional (the ``table`` extra): without it these raise one ``ImportError`` saying
how to install it.
"""
import dataclasses
import math

import numpy as np

#: The error without pandas.
PANDAS_MISSING = "to_frame needs pandas: pip install meanfield-dropout[table]"
_WIDTH = 72


def pandas():
    """The pandas module (ImportError with :data:`PANDAS_MISSING` if it is not installed)."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(PANDAS_MISSING) from None
    return pd


def frame(rows, columns=None):
    """A DataFrame of ``rows`` (a list of dicts; ``columns`` orders them)."""
    return pandas().DataFrame.from_records(list(rows), columns=columns)


def concat(frames):
    """The rows of several DataFrames in one (a fresh index)."""
    return pandas().concat(list(frames), ignore_index=True)


def write_csv(table, path):
    """Write the DataFrame ``table`` to the CSV file ``path`` (no index column)."""
    from .results import atomic_file
    with atomic_file(path, "w") as handle:
        table.to_csv(handle, index=False)
    return path


def describe(value):
    """A short text for one field: dtype and shape of an array, keys of a dict, the length of
    a long sequence, 4 significant digits of a number."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype}{list(value.shape)}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}" if math.isfinite(value) else str(float(value))
    if isinstance(value, dict):
        inner = ", ".join(f"{k}: {describe(v)}" for k, v in value.items())
        return "{" + (inner if len(inner) <= _WIDTH else ", ".join(map(str, value))) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(describe(v) for v in value)
        return (f"[{inner}]" if len(inner) <= _WIDTH and len(value) <= 8
                else f"<{len(value)} items>")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return type(value).__name__
    text = repr(value)
    return text if len(text) <= _WIDTH else text[:_WIDTH - 3] + "..."


def compact_repr(self):
    """``ClassName(field=..., ...)`` of a dataclass or named tuple: shapes and key numbers,
    never arrays.

    A field whose description is too long is cut to its keys or length (:func:`describe`).
    """
    fields = ([f.name for f in dataclasses.fields(self) if f.repr]
              if dataclasses.is_dataclass(self) else list(self._fields))
    return (f"{type(self).__name__}("
            + ", ".join(f"{name}={describe(getattr(self, name))}" for name in fields) + ")")
