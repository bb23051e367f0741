"""Numba's compile cache: compile every kernel ahead of a run, see where the cache is, clear it.

Every kernel of :mod:`meanfield_dropout.kernels` is compiled by Numba the first time a run
calls it with a new combination of argument types (float64 or float32 particles, …) and
cached on disk (``cache=True``). A run that finds its kernels in the cache starts at once; a
run on an empty cache compiles them first. :func:`warmup` compiles them ahead, in parallel
processes: each warm-up :data:`TASKS` entry is a tiny call of the public functions that
compiles exactly the kernels and argument types a real run of that part of the package
compiles, with both twins of the engine's and the limits' kernels
(:mod:`meanfield_dropout.kernels.twins`): a small run takes the serial ones, a large one the
parallel ones.

The cache lives where Numba puts it, one folder per source folder: under the directory
``NUMBA_CACHE_DIR`` if that environment variable is set (a read-only install, a cluster's
shared file system), else in the ``__pycache__`` folder beside the kernel modules (or a
per-user folder when the package directory is read-only). ``NUMBA_DISABLE_CACHE=1`` turns the
cache off: every process then compiles what it uses. An entry is keyed by the source of the whole
kernel layer (:mod:`meanfield_dropout.kernels.cache`), so an edit or an upgrade of any kernel
module compiles every kernel again; stale entries,
and those of kernels that moved to another module, only take space (:func:`clear_cache`
removes them).
"""
import importlib
import inspect
import json
import multiprocessing
import os
import pickle
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from numba.core import config
from numba.core.caching import FunctionCache, IndexDataCacheFile, _CacheLocator
from numba.core.registry import CPUDispatcher
from tqdm.auto import tqdm

from .kernels.twins import for_run, serial, twins
from .kernels.variants import _run_chunk, chunk_callees

#: Precisions a run may ask for; float32 kernels are compiled only for float32 runs.
DTYPES = ("float64", "float32")


def _teacher(points=8, dim=3, seed=0):
    rng = np.random.default_rng(seed)
    inputs = rng.standard_normal((points, dim))
    return inputs, np.tanh(inputs[:, 0])


def _simulate(dtype):
    from .engine import VARIANTS, simulate
    inputs, targets = _teacher()
    simulate(inputs, targets, width=4, keep_prob=0.5, master_lr=1e-3, steps=2,
             variants=VARIANTS, val_inputs=inputs, val_targets=targets, dtype=dtype,
             progress=False)


def _limits(dtype):
    from .limits import LIMITS, LimitConstants, simulate_limit
    from .network import network_data
    train = network_data(*_teacher(), activation="tanh")
    for limit in LIMITS:
        simulate_limit(limit, train, LimitConstants(alpha=0.1, beta=0.1, tau=0.01),
                       times=[0.0, 0.02], limit_particles=4)


def _curvature(dtype):
    from . import curvature
    from .network import init_particles
    inputs, targets = _teacher()
    X = init_particles(4, inputs.shape[1])
    curvature.sharpness(X, inputs, targets, iterations=2)
    curvature.batch_sharpness(X, inputs, targets, batch_size=4, draws=2, keep_prob=0.5)


def _sme(dtype):
    from .sme import equations, hessian, model
    from .sme.covariance import empirical_covariance, noise_covariance
    inputs, targets = _teacher()
    problem = model.make_problem(inputs, targets[:, None], width=3, keep_prob=0.5)
    params = model.init_params(problem)
    equations.simulate_dropout(problem, params, 0.01, 2)
    equations.simulate_modified_gd(problem, params, 0.01, 2)
    for order in (1, 2):
        equations.simulate_sme(problem, params, 0.01, 2, order=order)
    noise_covariance(problem, params)
    empirical_covariance(problem, params, 2)
    hessian.modified_loss_hessian(problem, params)


#: Warm-up tasks: name → (call, the dtypes it compiles for). Each call compiles the kernels
#: of one part of the package for one dtype.
TASKS = {"simulate": (_simulate, DTYPES), "limits": (_limits, ("float64",)),
         "curvature": (_curvature, ("float64",)), "sme": (_sme, ("float64",))}


def task_list(dtypes=DTYPES):
    """The (task, dtype) pairs of :data:`TASKS` for the precisions ``dtypes``."""
    return [(name, dtype) for name, (_, kinds) in TASKS.items()
            for dtype in kinds if dtype in dtypes]


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
#: :func:`run_tasks`).
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
    (:func:`run_tasks`), whose tiny runs take the serial twins
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
    if not cached and not _both_twins[0]:
        _compile_callees_apart(kernel, args)
    types = tuple(kernel.typeof_pyval(a) for a in args)
    for each in pair if _both_twins[0] and pair[-1] is kernel else (kernel,):
        each.compile(types)


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
    as the kernel's compile reaches it."""
    split = SPLITS.get(kernel.py_func.__code__)
    if (split is None or os.environ.get(SPLIT_VARIABLE, "1") == "0"
            or len(os.sched_getaffinity(0)) < 2 or cache_info()["disabled"]
            or multiprocessing.parent_process() is not None):
        return
    pair = twins(kernel)
    flavour = serial if len(pair) == 2 and pair[1] is kernel else None      # a serial twin
    here, elsewhere = split(*args)
    plan = [(callee.py_func.__module__, callee.py_func.__name__, flavour is not None,
             tuple(callee.typeof_pyval(a) for a in callee_args))
            for callee, callee_args in elsewhere]
    with tempfile.TemporaryDirectory(prefix="meanfield-compile-") as scratch:
        private = Path(scratch) / "cache"
        env = dict(os.environ, NUMBA_CACHE_DIR=str(private))
        env.pop("NUMBA_DISABLE_CACHE", None)
        Path(scratch, "plan").write_bytes(pickle.dumps(plan))
        helper = subprocess.Popen([sys.executable, "-m", __name__, "--callees",
                                   str(Path(scratch, "plan"))], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for callee, callee_args in here:
            callee = flavour(callee) if flavour else callee
            callee.compile(tuple(callee.typeof_pyval(a) for a in callee_args))
        if helper.wait() == 0:
            _merge_cache(private)


def _compile_plan(path):
    """Compile the (module, kernel name, serial twin, argument types) of the pickle ``path``
    (written by :func:`_compile_callees_apart`) into this process's cache."""
    for module, name, twin, types in pickle.loads(Path(path).read_bytes()):
        kernel = getattr(importlib.import_module(module), name)
        (serial(kernel) if twin else kernel).compile(types)


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


def cache_dir():
    """The directory where Numba caches this package's kernels (all kernel modules share it)."""
    return Path(FunctionCache(_run_chunk.py_func)._cache_path)


def _numba_cache_folder(source_file):
    """The folder where Numba caches the kernels defined in ``source_file``: the cache path
    of a function of that file (:class:`numba.core.caching.FunctionCache`, which creates it)."""
    namespace = {}
    exec(compile("def kernel():\n    pass\n", str(source_file), "exec"), namespace)
    return Path(FunctionCache(namespace["kernel"])._cache_path)


def cache_folders():
    """The Numba cache folders of the source folders of this package that exist:
    :func:`cache_dir`, and those of the other folders, which hold the entries of kernels that
    another version of the package defined there. Every folder of the package is cached the
    way ``kernels/`` is: in its ``__pycache__``, or in the folder Numba names after it beside
    :func:`cache_dir` (``NUMBA_CACHE_DIR`` or the per-user cache)."""
    kernels, kernel_file = cache_dir(), Path(inspect.getfile(_run_chunk.py_func))
    in_tree = kernels == kernel_file.parent / "__pycache__"
    folders = {source.parent / "__pycache__" if in_tree else
               kernels.parent / _CacheLocator.get_suitable_cache_subpath(str(source))
               for source in kernel_file.parents[1].rglob("*.py")}
    return sorted(folder for folder in folders if folder.is_dir())


def cache_files():
    """The kernels' cache files (index ``.nbi`` and data ``.nbc``) in :func:`cache_folders`."""
    return sorted(path for folder in cache_folders() for path in folder.glob("*.nb[ic]"))


def cache_info():
    """Where the kernel cache is, how it was chosen, the folders holding its files, its
    entries and its size in bytes."""
    files = cache_files()
    how = ("NUMBA_CACHE_DIR" if os.environ.get("NUMBA_CACHE_DIR")
           else "beside the kernel modules (set NUMBA_CACHE_DIR to move it)")
    return dict(path=cache_dir(), chosen_by=how,
                disabled=os.environ.get("NUMBA_DISABLE_CACHE", "0") not in ("", "0"),
                folders=sorted({p.parent for p in files}),
                entries=sum(p.suffix == ".nbc" for p in files),
                size=sum(p.stat().st_size for p in files))


def clear_cache():
    """Delete the kernels' cache files in every folder of :func:`cache_folders`; returns how
    many bytes were freed."""
    freed = 0
    for path in cache_files():
        freed += path.stat().st_size
        path.unlink(missing_ok=True)
    return freed


def _task_call(name):
    """The call of task ``name``: a :data:`TASKS` name or a ``module.function`` path."""
    if name in TASKS:
        return TASKS[name][0]
    module, _, function = name.rpartition(".")
    return getattr(importlib.import_module(module), function)


def run_tasks(tasks, both_twins=True):
    """Run warm-up ``tasks`` ((name, dtype) pairs) in this process, compiling into its cache
    the kernels they run and, with ``both_twins``, the parallel kernel of each serial twin
    they compile ahead (:func:`compile_ahead`)."""
    _both_twins[0] = both_twins
    try:
        for name, dtype in tasks:
            _task_call(name)(dtype)
    finally:
        _both_twins[0] = False


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


def warmup(dtypes=DTYPES, jobs=None, progress=True, tasks=None):
    """Compile every kernel a run may use for the precisions ``dtypes``, ``jobs`` processes
    at a time; returns the wall time in seconds.

    Each task runs in a process of its own with a private cache directory, so no two
    processes write the same cache entry; the parent then adds each private cache's entries
    to the folder where runs read them, the Numba cache folder of each kernel's source file
    (:func:`_merge_cache`). Kernels shared by two tasks are compiled by both. ``tasks``:
    (name, dtype) pairs, a name being a :data:`TASKS` key or a ``module.function`` path
    (default: :func:`task_list` of ``dtypes``), started longest first
    (:data:`COMPILE_SECONDS`).
    """
    if cache_info()["disabled"]:
        raise ValueError("NUMBA_DISABLE_CACHE is set: runs would not read what a warm-up "
                         "compiles; unset it to warm up")
    tasks = task_list(dtypes) if tasks is None else list(tasks)
    # the longest first, so that the processes finish about together
    tasks.sort(key=lambda task: -(COMPILE_SECONDS.get(task, 0)
                                  + PARALLEL_COMPILE_SECONDS.get(task, 0)))
    jobs = max(1, min(jobs or len(os.sched_getaffinity(0)), len(tasks)))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="meanfield-warmup-") as scratch, \
            tqdm(total=len(tasks), desc="warm-up", unit="task", disable=not progress) as bar:
        def compile_task(i):
            private = Path(scratch) / str(i)
            env = dict(os.environ, NUMBA_CACHE_DIR=str(private))
            env.pop("NUMBA_DISABLE_CACHE", None)
            name, dtype = tasks[i]
            done = subprocess.run([sys.executable, "-m", __name__, f"{name}:{dtype}"],
                                  env=env, capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"warm-up task {name} ({dtype}) failed: "
                                   f"{done.stderr.strip().splitlines()[-1:]}")
            return private

        with ThreadPoolExecutor(jobs) as pool:
            for done in as_completed([pool.submit(compile_task, i) for i in range(len(tasks))]):
                _merge_cache(done.result())
                bar.update()
    return time.perf_counter() - start


if __name__ == "__main__":
    # the package's module, not this ``__main__`` copy: compile_ahead reads its state
    package = importlib.import_module("meanfield_dropout.warmup")
    if sys.argv[1] == "--callees":
        package._compile_plan(sys.argv[2])
    else:
        package.run_tasks([tuple(item.split(":")) for item in sys.argv[1].split(",")])
    package._write_sources()
