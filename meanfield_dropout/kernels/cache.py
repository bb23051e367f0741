"""The kernels' Numba cache entries are keyed by the source of the whole kernel layer.

Numba keys a cached kernel by the content of its own source file only, yet a cached kernel
holds the machine code of every kernel it calls: after an edit or an upgrade that changes
``core.py`` but not ``variants.py``, the cached chunk kernel of ``variants.py`` would still
run the old ``core.py`` and give the old numbers, silently. The locators here give every kernel
of a registered folder one source stamp, the SHA-256 of all the folder's ``*.py`` files, so
that any change to the layer recompiles each of its kernels once.

The locators are placed first in Numba's list of cache locators when this module is imported
(by :mod:`meanfield_dropout.kernels`, before any kernel module) and decline every function
outside a registered folder, which Numba's own locators then handle as before. Where they
live (``NUMBA_CACHE_DIR``, a ``__pycache__`` beside the sources, or the user-wide cache) is
Numba's choice, unchanged. Setting ``NUMBA_CACHE_LOCATOR_CLASSES`` replaces Numba's list and
with it these locators: each kernel is then keyed by its own file again.
"""
import hashlib
from pathlib import Path

from numba.core import caching


def _numba_class(name):
    """A class of ``numba.core.caching``: public in recent Numba, ``_``-prefixed before."""
    return getattr(caching, name, None) or getattr(caching, "_" + name)


#: The kernel layer's folder.
FOLDER = Path(__file__).resolve().parent

#: Registered folder → the source stamp of its kernels.
_STAMPS = {}


def source_stamp(folder):
    """SHA-256 (hex) of the names and contents of the ``*.py`` files of ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def register(folder):
    """Key the cache entries of the kernels defined in ``folder`` by :func:`source_stamp` of
    the folder, read now (a process sees the sources it imported)."""
    folder = Path(folder).resolve()
    _STAMPS[folder] = source_stamp(folder)


class _LayerStamp:
    """Locator mixin: one source stamp for every function of a registered folder."""

    @classmethod
    def from_function(cls, py_func, py_file):
        if Path(py_file).resolve().parent not in _STAMPS:
            return None
        return super().from_function(py_func, py_file)

    def get_source_stamp(self):
        return _STAMPS[Path(self._py_file).resolve().parent]


class LayerUserProvidedLocator(_LayerStamp, _numba_class("UserProvidedCacheLocator")):
    """Numba's ``NUMBA_CACHE_DIR`` locator with the layer's stamp."""


class LayerInTreeLocator(_LayerStamp, _numba_class("InTreeCacheLocator")):
    """Numba's ``__pycache__`` locator with the layer's stamp."""


class LayerUserWideLocator(_LayerStamp, _numba_class("UserWideCacheLocator")):
    """Numba's user-wide locator (a read-only install) with the layer's stamp."""


_LOCATORS = [LayerUserProvidedLocator, LayerInTreeLocator, LayerUserWideLocator]
_chosen = _numba_class("CacheImpl")._locator_classes
if _chosen[:len(_LOCATORS)] != _LOCATORS:
    _chosen[:0] = _LOCATORS
register(FOLDER)
