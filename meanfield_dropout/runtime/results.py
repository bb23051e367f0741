"""The one file format of every result and experiment cache: a dataclass ↔ one ``.npz`` file.

A result is a *registered* dataclass (:func:`register`; :func:`result_class` makes one) whose
fields hold arrays, numbers, strings, ``None``, and lists, tuples, dicts (string keys) or
registered dataclasses of these.
:func:`save` writes it as one ``.npz`` archive:

* every array is an entry named by its path in the result, e.g. ``train_loss/dropout`` or
  ``studies/0/widths``;
* the entry ``__result__`` holds the rest as JSON: ``{"format": 1, "value": tree}``, where the
  tree mirrors the result with ``{"__type__": name, "fields": {...}}`` for a dataclass,
  ``{"__array__": path}`` for an array and ``{"__tuple__": [...]}`` for a tuple.

:func:`load` reads it back with ``allow_pickle=False``; it only builds registered classes, and
any missing, corrupt or truncated file, missing entry or invalid value is a one-line
``ValueError`` naming the file (:func:`read_npz` gives the same errors to the other readers of
``.npz`` files).
"""
import contextlib
import dataclasses
import json
import math
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..validation import check_data_file
from .memory import MemoryLimitError, check_memory
from .tables import compact_repr

FORMAT = 1
_META = "__result__"
_TYPES = {}


def register(cls):
    """Register the dataclass ``cls`` with the codec (usable as a class decorator).

    Only the fields taking part in ``__init__`` are stored; a field with ``init=False`` is
    rebuilt by the class (e.g. in ``__post_init__``).
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    if _TYPES.setdefault(cls.__name__, cls) is not cls:
        raise TypeError(f"another result class is already registered as {cls.__name__!r}")
    return cls


class Result:
    """Base of the results a user saves and loads one at a time (e.g.
    :class:`~meanfield_dropout.engine.SimulationResult`): one ``.npz`` file each."""

    def save(self, path):
        """Write the result to one ``.npz`` file (:func:`save`); returns its path."""
        return save(self, path)

    @classmethod
    def load(cls, path):
        """Read a result written by :meth:`save` (:func:`load`: a ValueError naming a bad
        file, or one holding another class)."""
        return load(path, cls)


def result_class(cls):
    """Make ``cls`` a result: a dataclass compared by identity (its fields hold arrays), with
    the compact repr of :func:`~meanfield_dropout.runtime.tables.compact_repr`, registered
    with the codec (:func:`register`). Usable as a class decorator."""
    cls = dataclasses.dataclass(eq=False, repr=False)(cls)
    cls.__repr__ = compact_repr
    return register(cls)


def save(result, path):
    """Write ``result`` to ``path`` (``.npz`` appended if missing), atomically.

    Parameters
    ----------
    result : registered dataclass
    path : str or path-like

    Returns
    -------
    pathlib.Path
        The file written.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays = {}
    tree = _encode(result, "", arrays)
    with atomic_file(path, "wb") as handle:
        np.savez_compressed(handle, **{_META: np.array(json.dumps(
            {"format": FORMAT, "value": tree}))}, **arrays)
    return path


@contextlib.contextmanager
def atomic_file(path, mode="wb"):
    """A file to write that replaces ``path`` only once it is complete.

    Yields a handle on a temporary file in ``path``'s directory (created if missing); on
    success it is flushed to disk, given the permissions of a newly created file (``0o666``
    less the umask, not ``mkstemp``'s owner-only ``0o600``) and renamed over ``path``; on any
    error it is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def load(path, expected=None):
    """Read a result written by :func:`save`.

    Parameters
    ----------
    path : str or path-like
    expected : type, optional
        The registered class the file must hold.

    Raises
    ------
    ValueError
        One line naming the file: missing, not a result archive, corrupt or truncated,
        missing entries, values its class refuses, or holding another class than
        ``expected``.
    """
    path = Path(path)
    meta, arrays = _read_archive(path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown result format {meta.get('format')!r}"
                         if isinstance(meta, dict) else f"{path}: malformed {_META} entry")
    result = _Decoder(path, arrays).decode(meta.get("value"))
    if expected is not None and not isinstance(result, expected):
        raise ValueError(f"{path} holds a {type(result).__name__}, expected "
                         f"{expected.__name__}")
    return result


def read_npz(path, what="file", select=None):
    """The arrays of the ``.npz`` archive ``path``, read with ``allow_pickle=False``.

    Parameters
    ----------
    path : str or path-like
    what : str
        What the file should be, for the messages (``"result file"``, ``"MNIST archive"``).
    select : callable, optional
        ``select(names) -> names to read`` (default: all).

    Returns
    -------
    dict of str -> ndarray

    Raises
    ------
    ValueError
        One line naming ``what`` and the file when it is missing, not a regular file (a FIFO
        or a device is refused before it is opened), larger than
        :data:`~meanfield_dropout.validation.MAX_DATA_FILE_BYTES`, not a zip archive, holds
        objects (pickles), or is corrupt or truncated;
        :class:`~meanfield_dropout.runtime.memory.MemoryLimitError` when the arrays to read
        would not fit in memory once decompressed (checked before they are read).
    """
    path = check_data_file(path, what)
    try:
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path} is not a {what}: not an .npz (zip) archive, or "
                             "truncated")
        with np.load(path, allow_pickle=False) as data:
            names = data.files if select is None else select(list(data.files))
            check_memory(sum(_npy_bytes(data.zip, key) for key in names),
                         f"reading {what} {path}", "give a smaller file")
            return {key: data[key] for key in names}
    except ValueError as exc:
        if str(exc).startswith(str(path)) or isinstance(exc, MemoryLimitError):
            raise
        raise ValueError(f"{path} is not a readable {what}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") \
            from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"{path} is corrupt or truncated ({what}): {exc}") from None


def _npy_bytes(archive, key):
    """Bytes of the array ``key`` of an open ``.npz`` zip, from its ``.npy`` header (what
    reading it allocates, whatever the compressed size)."""
    name = f"{key}.npy" if f"{key}.npy" in archive.namelist() else key
    with archive.open(name) as member:
        version = np.lib.format.read_magic(member)
        reader = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                  np.lib.format.read_array_header_2_0)
        shape, _, dtype = reader(member)
    return math.prod(shape) * dtype.itemsize


def _read_archive(path):
    """The JSON tree and the arrays of the result file ``path``."""
    arrays = read_npz(path, "result file")
    if _META not in arrays:
        raise ValueError(f"{path} is not a result file (no {_META} entry)")
    try:
        meta = json.loads(str(arrays.pop(_META)))
    except ValueError as exc:
        raise ValueError(f"{path} is not a readable result file: malformed {_META} entry "
                         f"({exc})") from None
    return meta, arrays


def _encode(value, key, arrays):
    """JSON tree of ``value``; its arrays go to ``arrays`` under their paths."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if _TYPES.get(name) is not type(value):
            raise TypeError(f"{name} is not registered with meanfield_dropout.runtime.results")
        return {"__type__": name, "fields": {
            f.name: _encode(getattr(value, f.name), _join(key, f.name), arrays)
            for f in dataclasses.fields(value) if f.init}}
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError(f"{key}: object arrays cannot be stored without pickle")
        if key in arrays:
            raise TypeError(f"two arrays of the result have the path {key!r}")
        arrays[key] = value
        return {"__array__": key}
    if isinstance(value, dict):
        for item in value:
            if not isinstance(item, str) or item.startswith("__"):
                raise TypeError(f"{key}: dict keys must be strings not starting with '__', "
                                f"got {item!r}")
        return {item: _encode(entry, _join(key, item), arrays) for item, entry in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_encode(entry, _join(key, str(i)), arrays) for i, entry in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{key}: cannot store a {type(value).__name__}")


def _join(key, name):
    return f"{key}/{name}" if key else name


class _Decoder:
    """Rebuilds a tree read from one file; errors name that file."""

    def __init__(self, path, arrays):
        self.path = path
        self.arrays = arrays

    def decode(self, node):
        if isinstance(node, list):
            return [self.decode(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "__array__" in node:
            key = node["__array__"]
            if not isinstance(key, str) or key not in self.arrays:
                raise ValueError(f"{self.path} is missing the array entry {key!r}")
            return self.arrays[key]
        if "__tuple__" in node:
            if not isinstance(node["__tuple__"], list):
                raise ValueError(f"{self.path}: malformed tuple in {_META}")
            return tuple(self.decode(item) for item in node["__tuple__"])
        if "__type__" in node:
            return self._dataclass(node)
        return {key: self.decode(item) for key, item in node.items()}

    def _dataclass(self, node):
        cls = _TYPES.get(node["__type__"]) if isinstance(node["__type__"], str) else None
        if cls is None:
            raise ValueError(f"{self.path} holds an unknown result type {node['__type__']!r} "
                             "(read it with meanfield_dropout.load, or phase_diagram.load for "
                             "the phase-diagram results)")
        stored = node.get("fields", {})
        if not isinstance(stored, dict):
            raise ValueError(f"{self.path}: malformed fields of {cls.__name__}")
        # a cache saved before a field was renamed (validation.renamed_keywords)
        renamed = getattr(cls.__init__, "renamed", {})
        stored = {renamed.get(key, key): value for key, value in stored.items()}
        names = [f.name for f in dataclasses.fields(cls) if f.init]
        missing = [name for name in names if name not in stored]
        if missing:
            raise ValueError(f"{self.path} is missing the field(s) {missing} of "
                             f"{cls.__name__}")
        values = {name: self.decode(stored[name]) for name in names}
        try:
            return cls(**values)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
            # e.g. settings without a required entry, or a settings field out of range
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"{self.path} holds an invalid {cls.__name__}: {detail}") \
                from None
