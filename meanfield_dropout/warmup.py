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
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from numba.core.caching import FunctionCache, _CacheLocator
from tqdm.auto import tqdm

from .kernels.variants import _run_chunk
from .runtime.compiling import (COMPILE_SECONDS, PARALLEL_COMPILE_SECONDS, _both_twins,
                                _merge_cache, _write_sources, cache_disabled,
                                cache_environment)

#: Precisions a run may ask for; float32 kernels are compiled only for float32 runs.
DTYPES = ("float64", "float32")


def _teacher(points=8, dim=3, seed=0):
    rng = np.random.default_rng(seed)
    inputs = rng.standard_normal((points, dim))
    return inputs, np.tanh(inputs[:, 0])


def _simulate(dtype):
    from .engine import VARIANTS, simulate
    inputs, targets = _teacher()
    # every rule, then the ReLU rules without a penalty: the sign path's copy of the chunk
    # kernel (kernels.twins.sign_path_only)
    for variants in (VARIANTS, tuple(v for v in VARIANTS if v != "penalized")):
        simulate(inputs, targets, width=4, keep_prob=0.5, master_lr=1e-3, steps=2,
                 variants=variants, val_inputs=inputs, val_targets=targets, dtype=dtype,
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


def cache_dir():
    """The directory where Numba caches this package's kernels (all kernel modules share it)."""
    return Path(FunctionCache(_run_chunk.py_func)._cache_path)


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
                disabled=cache_disabled(),
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
    they compile ahead (:func:`~meanfield_dropout.runtime.compiling.compile_ahead`)."""
    _both_twins[0] = both_twins
    try:
        for name, dtype in tasks:
            _task_call(name)(dtype)
    finally:
        _both_twins[0] = False


def warmup(dtypes=DTYPES, jobs=None, progress=True, tasks=None):
    """Compile every kernel a run may use for the precisions ``dtypes``, ``jobs`` processes
    at a time; returns the wall time in seconds.

    Each task runs in a process of its own with a private cache directory, so no two
    processes write the same cache entry; the parent then adds each private cache's entries
    to the folder where runs read them, the Numba cache folder of each kernel's source file
    (:func:`~meanfield_dropout.runtime.compiling._merge_cache`). Kernels shared by two tasks are compiled by both. ``tasks``:
    (name, dtype) pairs, a name being a :data:`TASKS` key or a ``module.function`` path
    (default: :func:`task_list` of ``dtypes``), started longest first
    (:data:`~meanfield_dropout.runtime.compiling.COMPILE_SECONDS`).
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
            name, dtype = tasks[i]
            done = subprocess.run([sys.executable, "-m", __name__, f"{name}:{dtype}"],
                                  env=cache_environment(private), capture_output=True,
                                  text=True)
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
    # the package's module, not this ``__main__`` copy
    package = importlib.import_module("meanfield_dropout.warmup")
    package.run_tasks([tuple(item.split(":")) for item in sys.argv[1].split(",")])
    _write_sources()
