"""Serial twins of the kernels that run parallel regions: one source, two compilations.

The blocked kernels (:func:`~meanfield_dropout.kernels.core._forward_sums`,
:func:`~meanfield_dropout.kernels.core._backward_step`,
:func:`~meanfield_dropout.kernels.relu_signs._sign_backward_step`) run their blocks in a
``prange`` loop, and every kernel that calls them (the engine's
:func:`~meanfield_dropout.kernels.variants._run_chunk`, the limits' Heun step, …) is compiled
with them. Compiling a parallel region costs several seconds more than the same loop run in
order, and a run on one Numba thread gains nothing from it. :func:`serial` gives the serial
twin of such a kernel: the same Python function compiled with ``parallel=False`` (``prange``
runs as ``range``), whose callees are their own serial twins, so a serial run compiles no
parallel region at all. Blocks write only their own rows and slabs, which are added in block
order, so the twins give the same bits
(``tests/test_engine.py::test_serial_and_parallel_kernels_give_the_same_bits``).

A twin's cache files are its own (Numba's cache index does not record ``parallel``, so the
twin has another qualified name, ``<name>_serial``). Public functions pick the twin of a run
with :func:`for_run`.
"""
import types

import numba
from numba import njit
from numba.core.caching import NullCache
from numba.core.registry import CPUDispatcher

#: kernel → its serial twin (the kernel itself when nothing it reaches runs in parallel).
_SERIAL = {}


def _global_names(code):
    """The global names a code object (and the code objects nested in it) may read."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def serial(kernel):
    """The serial twin of the ``@njit`` dispatcher ``kernel``.

    Parameters
    ----------
    kernel : numba dispatcher

    Returns
    -------
    numba dispatcher
        ``kernel`` itself if neither it nor any kernel it calls is compiled with
        ``parallel=True``; otherwise a dispatcher of the same Python function with
        ``parallel=False`` and the other options of ``kernel``, whose global names of kernels
        are bound to their serial twins. Made once per kernel and process.
    """
    twin = _SERIAL.get(kernel)
    if twin is None:
        twin = _SERIAL[kernel] = _make_serial(kernel)
    return twin


def _make_serial(kernel):
    function = kernel.py_func
    callees = {}
    for name in _global_names(function.__code__):
        value = function.__globals__.get(name)
        if isinstance(value, CPUDispatcher) and value is not kernel:
            twin = serial(value)
            if twin is not value:
                callees[name] = twin
    if not kernel.targetoptions.get("parallel") and not callees:
        return kernel
    namespace = dict(function.__globals__, **callees)
    copy = types.FunctionType(function.__code__, namespace, function.__name__,
                              function.__defaults__, function.__closure__)
    copy.__kwdefaults__ = function.__kwdefaults__
    copy.__doc__ = function.__doc__
    copy.__module__ = function.__module__
    # its own cache files: the cache is keyed by module, qualified name and bytecode
    copy.__qualname__ = f"{function.__qualname__}_serial"
    options = {k: v for k, v in kernel.targetoptions.items() if k != "nopython"}
    options["parallel"] = False
    return njit(cache=not isinstance(kernel._cache, NullCache), **options)(copy)


def twins(kernel):
    """(parallel, serial): ``kernel`` (a kernel or a serial twin) and its serial twin, each
    once (one element if they are the same dispatcher)."""
    for original, twin in list(_SERIAL.items()):
        if twin is kernel:
            kernel = original
            break
    twin = serial(kernel)
    return (kernel,) if twin is kernel else (kernel, twin)


def for_run(kernel, parallel=True):
    """``kernel`` for a run: itself if ``parallel`` and Numba may start more than one thread
    (``numba.get_num_threads()``, which :func:`meanfield_dropout.runtime.threads.kernel_threads`
    sets by the problem's size), else its :func:`serial` twin. The numbers are the same."""
    return kernel if parallel and numba.get_num_threads() > 1 else serial(kernel)
