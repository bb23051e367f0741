"""Compiling the kernels a run needs before the run starts, and saying so.

A run calls :func:`compile_ahead` (or :func:`compile_once`, :func:`run_kernel`) before the
kernels it will call: a kernel found in Numba's cache loads at once; one that is not is
compiled first, after a message that says so (once per process and part of the package), so
that a progress bar's clock starts after the compiling. On a cold cache with a second core,
the engine's chunk kernel has its callees compiled in two processes at once (:data:`SPLITS`);
the second process writes a private cache whose entries are added to the cache where runs
read them (:func:`_merge_cache`, also used by :func:`meanfield_dropout.warmup.warmup`).
"""
import contextlib
import gc
import importlib
import inspect
import json
import multiprocessing
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

from numba.core import config
from numba.core.caching import FunctionCache, IndexDataCacheFile
from numba.core.registry import CPUDispatcher
from tqdm.auto import tqdm

from ..kernels.twins import for_run, recipe, remake, twins
from ..kernels.variants import _run_chunk, chunk_callees


def cache_disabled():
    """Whether Numba's cache is off (``NUMBA_DISABLE_CACHE``)."""
    return os.environ.get("NUMBA_DISABLE_CACHE", "0") not in ("", "0")


def cache_environment(folder, **variables):
    """The environment of a child process that caches its kernels in ``folder``: this
    process's, with ``NUMBA_CACHE_DIR`` set, the cache on, and ``variables`` added."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(folder), **variables)
    env.pop("NUMBA_DISABLE_CACHE", None)
    return env


#: Compile time of a task's serial twins on an empty cache (a small run, one Numba thread),
#: what :func:`compile_ahead` announces (CPU seconds of ``benchmarks/bench_compile.py`` on this
#: project's 2-core machine, tasks in this order, rounded up: simulate 15.3 s, limits 9.3 s,
#: curvature 8.1 s, SME 39.7 s, float32 simulate 16.2 s at commit d6642d0). A task's time is
#: that of all its kernels; one call compiles those it uses.
COMPILE_SECONDS = {("simulate", "float64"): 16, ("simulate", "float32"): 17,
                   ("limits", "float64"): 10, ("curvature", "float64"): 9,
                   ("sme", "float64"): 40}
#: What the parallel kernels of a large run add (``bench_compile.py``'s ``+ parallel`` rows:
#: simulate 11.4 s, limits 3.1 s, SME 29.3 s at commit d6642d0).
PARALLEL_COMPILE_SECONDS = {("simulate", "float64"): 12, ("simulate", "float32"): 12,
                            ("limits", "float64"): 4, ("sme", "float64"): 30}

#: The (task, dtype) pairs whose compiling this process has announced (one message each).
_announced = set()
#: The (kernel, dtype) pairs :func:`compile_once` has compiled ahead in this process.
_compiled = set()
#: Whether :func:`compile_ahead` compiles the parallel kernel of a serial twin too (a warm-up,
#: :func:`meanfield_dropout.warmup.run_tasks`).
_both_twins = [False]


def is_cached(kernel, args):
    """Whether the ``@njit`` ``kernel`` is compiled, or in the cache, for the types of ``args``
    (reads the kernel's cache index; compiles nothing)."""
    types = tuple(kernel.typeof_pyval(a) for a in args)
    if types in kernel.overloads:
        return True
    cache = kernel._cache
    if not hasattr(cache, "_cache_file"):       # caching off (NUMBA_DISABLE_CACHE)
        return False
    key = cache._index_key(types, kernel.targetctx.codegen())
    return key in cache._cache_file._load_index()


def compile_ahead(kernel, args, task, dtype, announce=True):
    """Compile (or load) ``kernel`` for the types of ``args`` now, saying so first if it is not
    in the cache: a run's progress bar then starts after the compiling, with a true estimate.
    The message of a task (and dtype) comes once per process. In a warm-up
    (:func:`meanfield_dropout.warmup.run_tasks`), whose tiny runs take the serial twins
    (:mod:`meanfield_dropout.kernels.twins`), the parallel kernel of a serial twin is compiled
    too: what a large run takes."""
    pair = twins(kernel)
    cached = is_cached(kernel, args)
    if announce and (task, dtype) not in _announced and not cached:
        _announced.add((task, dtype))
        seconds = COMPILE_SECONDS.get((task, dtype))
        if seconds and len(pair) == 2 and pair[0] is kernel:     # a large run
            seconds += PARALLEL_COMPILE_SECONDS.get((task, dtype), 0)
        about = f", about {seconds} s" if seconds else ""
        tqdm.write(f"compiling kernels: first run only{about}; `meanfield-dropout warmup` "
                   "does it ahead", file=sys.stderr)
    with _collection_paused():
        if not cached and not _both_twins[0]:
            _compile_callees_apart(kernel, args)
        types = tuple(kernel.typeof_pyval(a) for a in args)
        for each in pair if _both_twins[0] and pair[-1] is kernel else (kernel,):
            each.compile(types)


@contextlib.contextmanager
def _collection_paused():
    """Pause Python's cycle collector while Numba compiles: its passes over the compiler's many
    short-lived objects cost about 6% of a cold compile (1.6 of 30 s CPU for the demo's
    kernels on this project's 2-core machine). The cycles are collected after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


#: Kernels whose callees a cold compile splits between two processes: the code object of the
#: kernel (shared by its serial twin) → a function of the kernel's arguments giving two lists
#: of (callee, example arguments), the first compiled here, the second in another process.
SPLITS = {_run_chunk.py_func.__code__: chunk_callees}
#: Environment variable that turns the split off when set to 0: for processes that already
#: share the cores among themselves (the test suite's workers).
SPLIT_VARIABLE = "MEANFIELD_DROPOUT_COMPILE_SPLIT"


def _compile_callees_apart(kernel, args):
    """Compile the callees of ``kernel`` (:data:`SPLITS`) in two processes at once, this one
    and a second one with a private cache, whose entries are then added where runs read them
    (:func:`_merge_cache`): the kernel's own compile then loads them all. Only with a second
    core to use, in a process that is not a pool worker, with the cache on, unless
    :data:`SPLIT_VARIABLE` is 0. If the second process fails, this process compiles the rest
    as the kernel's compile reaches it. Each callee is the one the kernel calls: its serial
    twin in a serial twin, its sign-path copy in a sign-path copy
    (:mod:`meanfield_dropout.kernels.twins`)."""
    split = SPLITS.get(kernel.py_func.__code__)
    if (split is None or os.environ.get(SPLIT_VARIABLE, "1") == "0"
            or len(os.sched_getaffinity(0)) < 2 or cache_disabled()
            or multiprocessing.parent_process() is not None):
        return
    called = kernel.py_func.__globals__
    here, elsewhere = ([(called[callee.py_func.__name__], callee_args)
                        for callee, callee_args in group] for group in split(*args))
    plan = [(original.py_func.__module__, original.py_func.__name__, made,
             tuple(callee.typeof_pyval(a) for a in callee_args))
            for callee, callee_args in elsewhere for original, made in [recipe(callee)]]
    with tempfile.TemporaryDirectory(prefix="meanfield-compile-") as scratch:
        private = Path(scratch) / "cache"
        Path(scratch, "plan").write_bytes(pickle.dumps(plan))
        helper = subprocess.Popen([sys.executable, "-c", _HELPER, _PACKAGE,
                                   str(Path(scratch, "plan"))], env=cache_environment(private),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for callee, callee_args in here:
                callee.compile(tuple(callee.typeof_pyval(a) for a in callee_args))
            compiled = helper.wait() == 0
        finally:
            if helper.poll() is None:       # this process's part failed or was interrupted
                helper.kill()
                helper.wait()
        if compiled:
            _merge_cache(private)


#: The package's folder.
_PACKAGE = str(Path(__file__).resolve().parents[1])
#: The second process of a split: this module and the kernel layer under an empty package
#: module, so that it starts compiling without importing the package's API (SciPy, the
#: engine, …: 0.7 s on this project's 2-core machine), and it ends as soon as its cache files
#: are written, without tearing down the compiler's objects (another 0.5 s).
_HELPER = ("import os, sys, types; package = types.ModuleType('meanfield_dropout'); "
           "package.__path__ = [sys.argv[1]]; sys.modules['meanfield_dropout'] = package; "
           "from meanfield_dropout.runtime import compiling; "
           "compiling._compile_plan(sys.argv[2]); compiling._write_sources(); os._exit(0)")


def _compile_plan(path):
    """Compile the (module, kernel name, copies made of it, argument types) of the pickle
    ``path`` (written by :func:`_compile_callees_apart`) into this process's cache; the copies
    as :func:`~meanfield_dropout.kernels.twins.remake` makes them."""
    with _collection_paused():
        for module, name, made, types in pickle.loads(Path(path).read_bytes()):
            remake(getattr(importlib.import_module(module), name), made).compile(types)


def compile_once(kernel, args, task, dtype):
    """:func:`compile_ahead` the first time this process asks for ``kernel`` and ``dtype``;
    later calls cost a set lookup (a call with other argument types compiles, silently)."""
    if (kernel, dtype) not in _compiled:
        compile_ahead(kernel, args, task, dtype)
        _compiled.add((kernel, dtype))


def run_kernel(kernel, args, task, dtype):
    """``kernel(*args)`` on the twin of this run's Numba thread count
    (:func:`~meanfield_dropout.kernels.twins.for_run`: the serial twin on one thread),
    compiled ahead by :func:`compile_once`; returns what the kernel returns."""
    kernel = for_run(kernel)
    compile_once(kernel, args, task, dtype)
    return kernel(*args)


def _numba_cache_folder(source_file):
    """The folder where Numba caches the kernels defined in ``source_file``: the cache path
    of a function of that file (:class:`numba.core.caching.FunctionCache`, which creates it)."""
    namespace = {}
    exec(compile("def kernel():\n    pass\n", str(source_file), "exec"), namespace)
    return Path(FunctionCache(namespace["kernel"])._cache_path)


#: The file of a warm-up process's private cache that names the source file of each folder.
_SOURCES = "sources.json"


def _write_sources():
    """Write :data:`_SOURCES` into this process's ``NUMBA_CACHE_DIR``: for every cache folder
    (relative to it) of a cached kernel of an imported module, the kernel's source file."""
    sources = {}
    for module in list(sys.modules.values()):
        for value in list(getattr(module, "__dict__", {}).values()):
            if isinstance(value, CPUDispatcher) and hasattr(value._cache, "_cache_path"):
                folder = os.path.relpath(value._cache._cache_path, config.CACHE_DIR)
                sources[folder] = inspect.getfile(value.py_func)
    Path(config.CACHE_DIR, _SOURCES).write_text(json.dumps(sources))


def _merge_cache(source):
    """Add the entries of the cache index files under ``source``, a warm-up process's private
    cache, to the same-named indexes where runs read them: the Numba cache folder of each
    index's source file (:data:`_SOURCES`, :func:`_numba_cache_folder`), through Numba's own
    index and data files (atomic writes, fresh data names)."""
    sources = json.loads((Path(source) / _SOURCES).read_text())
    for index in Path(source).rglob("*.nbi"):
        folder = os.path.relpath(index.parent, source)
        if folder not in sources:
            raise RuntimeError(f"warm-up: no kernel module of the cache folder {folder}")
        with open(index, "rb") as f:
            pickle.load(f)                  # Numba's version (the same process wrote both)
            stamp, overloads = pickle.loads(f.read())
        base = index.name[:-len(".nbi")]
        read = IndexDataCacheFile(str(index.parent), base, stamp)
        write = IndexDataCacheFile(str(_numba_cache_folder(sources[folder])), base, stamp)
        for key, data_name in overloads.items():
            write.save(key, read._load_data(data_name))
