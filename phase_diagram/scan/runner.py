"""Run (or resume) a scan: its pending cells on the local process pool or on Dask.

The scan directory is a cell store (:mod:`meanfield_dropout.runtime.cells`, kind ``"scan"``;
:mod:`phase_diagram.scan.records`) filled by :func:`meanfield_dropout.runtime.cells.run_cells`:
each cell's seed comes from ``np.random.SeedSequence(root_seed, spawn_key=...)`` keyed by the
cell's identity, so the numbers do not depend on the worker count, the order or the backend;
finished cells (valid records) are skipped, so a killed scan resumes without computing any
cell twice; invalid records are recomputed, with a warning; a cell is computed under a claim,
so two scans into one directory share the cells instead of computing each twice; a directory
of another configuration is refused. Before the first cell runs, the scan checks that its
largest cells fit in memory side by side and warns about a long scan (the cell function's cost
estimator, :mod:`phase_diagram.scan.cell_functions`).
"""
import time

import numpy as np

from meanfield_dropout.engine import DivergenceError
from meanfield_dropout.runtime.cells import run_cells
from meanfield_dropout.runtime.memory import (announce_cost, announced, check_memory,
                                             format_bytes, warn_long_run)
from meanfield_dropout.runtime.runner import check_backend, check_workers

from .cell_functions import COST_ESTIMATORS, resolve_cell_function
from .cells import build_cells
from .records import manifest_config, scan_store


def _arguments(cell):
    """The positional and keyword arguments of the cell function for ``cell``."""
    return ((cell.width, cell.master_lr, cell.keep_prob,
             {lim: dict(c) for lim, c in cell.limits.items()}),
            dict(horizon=cell.identity["horizon"], seed=cell.seed, **cell.constants,
                 **cell.identity["options"]))


def run_cell(cell, function):
    """Compute one cell with the cell function ``function`` and return its record (the cell
    store adds its key and identity: :func:`meanfield_dropout.runtime.cells.run_cells`).

    The record holds the settings, (τ_n, q_n), the constants, the seed, the wall-clock
    ``elapsed`` and the process's ``cpu`` seconds of the cell, ``dropout_motion`` (the largest
    predictor distance of dropout to its initial network, when the cell function reports it;
    otherwise None) and, for each limit, the distance array returned by the cell function;
    for a run that diverged (:class:`~meanfield_dropout.engine.DivergenceError`, or
    non-finite distances) it holds
    ``diverged`` = {``step``, ``variant``, ``message``} and no distances.
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    args, kwargs = _arguments(cell)
    motion = None
    try:
        with announced():           # the scan announced its cells
            result = function(*args, **kwargs)
            distances, diverged, motion = _distances(cell, result), None, _motion(result)
    except DivergenceError as exc:
        # a diverging run is a result (typical of degenerate scalings), not a distance
        distances, diverged = {}, dict(step=exc.step, variant=exc.variant, message=str(exc))
    except (ValueError, RuntimeError):
        raise
    except Exception as exc:            # a bug or bad input in a (user) cell function
        raise RuntimeError(
            f"cell function {cell.identity['cell_function']} failed on the cell "
            f"{cell.key} ({cell.scaling.name}, width {cell.width}, repeat {cell.repeat}): "
            f"{type(exc).__name__}: {exc}") from exc
    if diverged is None:
        bad = [lim for lim, value in distances.items() if not _finite(value)]
        if bad:
            distances, diverged = {}, dict(
                step=None, variant=bad[0],
                message=f"the cell function returned non-finite distances to "
                        f"{', '.join(bad)}")
    return dict(name=cell.scaling.name, master_lr=cell.master_lr, keep_prob=cell.keep_prob,
                constants=cell.constants, seed=cell.seed,
                elapsed=time.perf_counter() - start, cpu=time.process_time() - cpu_start,
                diverged=diverged, distances=distances, dropout_motion=motion)


def _motion(result):
    """The largest ``dropout_motion`` of a cell function's result (how far dropout moved from
    its initial network; 0.0 exactly when no neuron was ever kept), or None without one."""
    motion = result.get("dropout_motion") if isinstance(result, dict) else None
    if motion is None:
        return None
    motion = np.atleast_1d(np.asarray(motion, dtype=float))
    return float(np.max(motion)) if motion.size and np.all(np.isfinite(motion)) else None


def _distances(cell, result):
    """{limit: JSON distance lists} of a cell function's result (RuntimeError if malformed)."""
    distances = result.get("distances", result) if isinstance(result, dict) else None
    name = cell.identity["cell_function"]
    if not isinstance(distances, dict) or set(cell.limits) - set(distances):
        raise RuntimeError(f"cell function {name} did not return a distance for every limit "
                           f"in {list(cell.limits)}")
    out = {lim: _distance_lists(distances[lim]) for lim in cell.limits}
    for lim, value in out.items():
        if isinstance(value, dict) and not value:
            raise RuntimeError(f"cell function {name} returned no distance series for {lim}")
    return out


def _finite(value):
    series = value.values() if isinstance(value, dict) else [value]
    return all(np.all(np.isfinite(s)) for s in series)


def _distance_lists(value):
    """A cell function's distances for one limit as JSON lists: {metric: list} or a list."""
    if isinstance(value, dict):
        return {k: np.atleast_1d(np.asarray(v, dtype=float)).tolist() for k, v in value.items()
                if isinstance(v, (list, tuple, np.ndarray))}
    return np.atleast_1d(np.asarray(value, dtype=float)).tolist()


def cell_costs(cells, function):
    """The estimated (bytes, seconds of one core) of each cell, by the cell function's
    cost estimator (:data:`~phase_diagram.scan.cell_functions.COST_ESTIMATORS`; None for a
    cell function without one). Cells of one scaling and width share their estimate."""
    estimate = COST_ESTIMATORS.get(function)
    if estimate is None:
        return None
    costs, seen = [], {}
    for cell in cells:
        where = (cell.scaling, cell.width)
        if where not in seen:
            args, kwargs = _arguments(cell)
            seen[where] = estimate(*args, **kwargs)
        costs.append(seen[where])
    return costs


def scan_seconds(config, allow_import=False):
    """Estimated seconds of one core of each cell of the scan of ``config`` (the seconds of
    :func:`cell_costs`, as the scan announces them), or None for a cell function without a
    cost estimator."""
    function = resolve_cell_function(config.cell_function, allow_import)
    costs = cell_costs(build_cells(config), function)
    return None if costs is None else [seconds for _, seconds in costs]


def _check_cost(cells, function, workers):
    """Refuse a scan whose ``workers`` largest cells do not fit in memory side by side, and
    warn about a long one (no check for a cell function without a cost estimator)."""
    costs = cell_costs(cells, function) if cells else None
    if costs is None:
        return
    costs = [(cost, cell.width) for cost, cell in zip(costs, cells)]
    largest = sorted(costs, key=lambda c: -c[0][0])[:max(1, min(workers, len(cells)))]
    check_memory(sum(c[0][0] for c in largest),
                 f"{len(largest)} cell(s) at once (the largest, at width {largest[0][1]}, "
                 f"needs {format_bytes(largest[0][0][0])})",
                 "use fewer workers or smaller widths")
    seconds = sum(c[0][1] for c in costs)
    warn_long_run(seconds, f"the scan of {len(cells)} cells",
                  "use fewer repeats, smaller widths or a shorter horizon")
    announce_cost(seconds, f"the scan of {len(cells)} cells", workers)


def run_scan(config, out_dir, *, workers=None, dask=None, dask_timeout=None, progress=True,
             allow_import=False):
    """Run (or resume) a scan; finished cells are skipped.

    Parameters
    ----------
    config : ScanConfig
    out_dir : str or Path
        Output directory: ``manifest.json``, ``cells/<key>.json`` and ``claims/<key>.lock``.
    workers : int, optional
        Worker processes (default: one per available core).
    dask : str, optional
        ``None`` for the local process pool, ``"local"`` for a ``dask.distributed.LocalCluster``
        with ``workers`` single-threaded worker processes, or a scheduler address (``workers``
        is then ignored: the cluster decides). Remote workers without access to ``out_dir``
        return their records, which are then written locally.
    dask_timeout : float, optional
        Seconds the scheduler has to answer (default
        :data:`meanfield_dropout.runtime.runner.DASK_TIMEOUT`).
    progress : bool
        Show a tqdm bar counting finished cells.
    allow_import : bool
        Import a cell function given as ``"module:function"`` (see
        :mod:`phase_diagram.scan.cell_functions`).

    Returns
    -------
    dict
        ``total``; ``skipped`` (finished before the scan started), ``computed`` (by this scan)
        and ``by_other`` (by another scan running into the same directory) cells;
        ``invalid``, the records found invalid and recomputed.

    Raises
    ------
    ValueError
        For a bad configuration, a directory of another configuration, or a scan that would
        not fit in memory (:class:`~meanfield_dropout.runtime.memory.MemoryLimitError`),
        before any cell runs; a scheduler that does not answer.
    Interrupted
        On Ctrl-C, once the workers are stopped (it says how many cells are kept).
    """
    workers = check_workers(workers)
    check_backend(dask, dask_timeout)
    function = resolve_cell_function(config.cell_function, allow_import)
    cells = build_cells(config)
    store = scan_store(out_dir, manifest_config(config))
    _check_cost(cells, function, workers if dask is None or dask == "local" else 1)
    store.open(cells=[c.key for c in cells])
    counts, _ = run_cells(cells, run_cell, store, args=(function,), workers=workers, dask=dask,
                          dask_timeout=dask_timeout, progress=progress, desc="scan")
    return counts
