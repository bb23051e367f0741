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

:func:`sign_path_only` makes copies the same way, with the constant
:data:`~meanfield_dropout.kernels.relu_signs.SIGN_PATH_ONLY` set: their masked-row step
compiles the ReLU sign path alone (``<name>_signs``), for a run whose every rule takes it (the
demo): its other backward pass is about a third of the engine's compile.
"""
import functools
import types

import numba
from numba import njit
from numba.core.caching import NullCache
from numba.core.registry import CPUDispatcher

#: copy → (the kernel it was made from, the name of the function of this module that made it).
_MADE_FROM = {}


def _global_names(code):
    """The global names a code object (and the code objects nested in it) may read."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


@functools.cache
def serial(kernel):
    """The serial twin of the ``@njit`` dispatcher ``kernel``, made once per kernel and
    process: a dispatcher of the same Python function with ``parallel=False`` and the other
    options of ``kernel``, whose global names of kernels are bound to their serial twins;
    ``kernel`` itself if neither it nor any kernel it calls is compiled with
    ``parallel=True``."""
    return _copy(kernel, serial, "_serial", {}, in_order=True)


@functools.cache
def sign_path_only(kernel):
    """The sign-path copy of the ``@njit`` dispatcher ``kernel``, made once per kernel and
    process, for calls whose masked-row steps are all on the sign path (ReLU, one output, no
    penalty): a dispatcher of the same Python function with
    :data:`~meanfield_dropout.kernels.relu_signs.SIGN_PATH_ONLY` True, whose global names of
    kernels are bound to their sign-path copies; ``kernel`` itself if neither it nor any
    kernel it calls reads the constant.

    A kernel that reads the constant itself runs its parallel region only off the sign path
    (:func:`~meanfield_dropout.kernels.core._backward_step`: the sign path's blocks run in
    parallel in the kernel it calls), so its copy has ``parallel=False``; the others keep
    their options.
    """
    reads = "SIGN_PATH_ONLY" in _global_names(kernel.py_func.__code__)
    return _copy(kernel, sign_path_only, "_signs", {"SIGN_PATH_ONLY": True}, in_order=reads)


def _copy(kernel, make, suffix, constants, in_order):
    """``kernel`` compiled from a copy of its function whose kernels are bound to ``make`` of
    them and whose ``constants`` (global name → value) are set, with ``parallel=False`` if
    ``in_order``; ``kernel`` itself if that changes nothing."""
    function = kernel.py_func
    bound = {}
    for name in _global_names(function.__code__):
        value = function.__globals__.get(name)
        if isinstance(value, CPUDispatcher) and value is not kernel:
            twin = make(value)
            if twin is not value:
                bound[name] = twin
        elif name in constants and value != constants[name]:
            bound[name] = constants[name]
    parallel = bool(kernel.targetoptions.get("parallel"))
    if not bound and not (in_order and parallel):
        return kernel
    namespace = dict(function.__globals__, **bound)
    copy = types.FunctionType(function.__code__, namespace, function.__name__,
                              function.__defaults__, function.__closure__)
    copy.__kwdefaults__ = function.__kwdefaults__
    copy.__doc__ = function.__doc__
    copy.__module__ = function.__module__
    # its own cache files: the cache is keyed by module, qualified name and bytecode
    copy.__qualname__ = f"{function.__qualname__}{suffix}"
    options = {k: v for k, v in kernel.targetoptions.items() if k != "nopython"}
    if in_order:
        options["parallel"] = False
    made = njit(cache=not isinstance(kernel._cache, NullCache), **options)(copy)
    _MADE_FROM[made] = (kernel, make.__name__)
    return made


def recipe(kernel):
    """How to make ``kernel`` in another process: (the kernel of its module it was made from,
    the names of the functions of this module that made it, in order), for :func:`remake`."""
    made = []
    while kernel in _MADE_FROM:
        kernel, name = _MADE_FROM[kernel]
        made.append(name)
    return kernel, tuple(reversed(made))


def remake(kernel, made):
    """The copy of ``kernel`` made by the functions of this module named ``made``, in order
    (:func:`recipe`)."""
    for name in made:
        kernel = _MAKERS[name](kernel)
    return kernel


#: The functions that make copies, by name (:func:`remake`).
_MAKERS = {"serial": serial, "sign_path_only": sign_path_only}


def twins(kernel):
    """(parallel, serial): ``kernel`` (a kernel or a serial twin) and its serial twin, each
    once (one element if they are the same dispatcher)."""
    original, made_by = _MADE_FROM.get(kernel, (kernel, None))
    if made_by == "serial":
        kernel = original
    twin = serial(kernel)
    return (kernel,) if twin is kernel else (kernel, twin)


def for_run(kernel, parallel=True):
    """``kernel`` for a run: itself if ``parallel`` and Numba may start more than one thread
    (``numba.get_num_threads()``, which :func:`meanfield_dropout.runtime.threads.kernel_threads`
    sets by the problem's size), else its :func:`serial` twin. The numbers are the same."""
    return kernel if parallel and numba.get_num_threads() > 1 else serial(kernel)
