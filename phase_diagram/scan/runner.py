"""Run (or resume) a scan: its pending cells on the local process pool or on Dask.

Each cell's seed comes from ``np.random.SeedSequence(root_seed, spawn_key=...)`` keyed by the
cell's identity, so the numbers do not depend on the worker count, the order or the backend.
Finished cells are skipped, so a killed scan resumes without computing any cell twice.
"""
import math
import time
from pathlib import Path

import numba
import numpy as np
from tqdm.auto import tqdm

from meanfield_dropout.engine import DivergenceError
from meanfield_dropout._validate import check_int
from meanfield_dropout.parallel import available_cores, run_unordered

from .cell_functions import resolve_cell_function
from .cells import build_cells
from .records import cell_path, read_record, write_json_atomic, write_manifest


def run_cell(cell, out_dir, function):
    """Compute one cell with the cell function ``function``, write its record atomically to
    ``DIR/cells/<key>.json`` and return it.

    The record holds the settings, (τ_n, q_n), the constants, the seed and, for each limit,
    the distance array returned by the cell function.
    """
    # One active Numba thread also on Dask workers (the setting is per calling thread).
    numba.set_num_threads(1)
    start = time.perf_counter()
    try:
        result = function(cell.width, cell.master_lr, cell.keep_prob,
                          {lim: dict(c) for lim, c in cell.limits.items()},
                          horizon=cell.identity["horizon"], seed=cell.seed,
                          **cell.constants, **cell.identity["options"])
    except DivergenceError as exc:
        # A diverging run is a result (typical of degenerate scalings): infinite distances.
        result, diverged = {lim: math.inf for lim in cell.limits}, str(exc)
    else:
        diverged = None
    distances = result.get("distances", result) if isinstance(result, dict) else None
    if not isinstance(distances, dict) or set(cell.limits) - set(distances):
        raise RuntimeError(f"cell function {cell.identity['cell_function']} did not return a "
                           f"distance for every limit in {list(cell.limits)}")
    record = dict(
        key=cell.key, identity=cell.identity, name=cell.scaling.name,
        master_lr=cell.master_lr, keep_prob=cell.keep_prob, constants=cell.constants,
        seed=cell.seed, elapsed=time.perf_counter() - start, diverged=diverged,
        distances={lim: _distance_lists(distances[lim]) for lim in cell.limits})
    write_json_atomic(cell_path(out_dir, cell.key), record)
    return record


def _distance_lists(value):
    """A cell function's distances for one limit as JSON lists: {metric: list} or a list."""
    if isinstance(value, dict):
        return {k: np.atleast_1d(np.asarray(v, dtype=float)).tolist() for k, v in value.items()
                if isinstance(v, (list, tuple, np.ndarray))}
    return np.atleast_1d(np.asarray(value, dtype=float)).tolist()


def _store(record, out_dir, bar):
    """Write a record a worker could not write (no shared file system) and count it."""
    path = cell_path(out_dir, record["key"])
    if not path.exists():
        write_json_atomic(path, record)
    bar.update(1)


def _run_pool(cells, out_dir, function, workers, bar):
    # Always in worker processes: a cell that crashes its process must not end the scan's.
    tasks = [(cell, str(out_dir), function) for cell in cells]
    for _, record in run_unordered(run_cell, tasks, workers, always_spawn=True):
        _store(record, out_dir, bar)


def _run_dask(cells, out_dir, function, address, workers, bar):
    """Run cells on ``dask.distributed``: a scheduler ``address``, or "local" for a
    LocalCluster of ``workers`` (default 2) single-threaded worker processes."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed as dask_as_completed
    except ImportError:
        raise RuntimeError("dask.distributed is not installed: pip install -e .[distributed]") \
            from None
    cluster = None
    if address == "local":
        cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    try:
        client = Client(cluster if cluster is not None else address)
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise ValueError(f"dask: cannot connect to the scheduler {address!r}: {exc}") from None
    try:
        futures = [client.submit(run_cell, cell, str(out_dir), function, pure=False,
                                 key=f"cell-{cell.key}") for cell in cells]
        for future in dask_as_completed(futures):
            try:
                record = future.result()
            except BaseException:
                client.cancel(futures)
                raise
            _store(record, out_dir, bar)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_scan(config, out_dir, *, workers=None, dask=None, progress=True,
             allow_import=False):
    """Run (or resume) a scan; finished cells are skipped.

    Parameters
    ----------
    config : ScanConfig
    out_dir : str or Path
        Output directory: ``manifest.json`` and ``cells/<key>.json``.
    workers : int, optional
        Worker processes (default: one per available core).
    dask : str, optional
        ``None`` for the local process pool, ``"local"`` for a ``dask.distributed.LocalCluster``
        with ``workers`` single-threaded worker processes, or a scheduler address (``workers``
        is then ignored: the cluster decides). Remote workers without access to ``out_dir``
        return their records, which are then written locally.
    progress : bool
        Show a tqdm bar counting finished cells.
    allow_import : bool
        Import a cell function given as ``"module:function"`` (see
        :mod:`phase_diagram.scan.cell_functions`).

    Returns
    -------
    dict
        ``total``, ``skipped`` (already finished) and ``computed`` cell counts.
    """
    workers = None if workers is None else check_int(workers, "workers", low=1)
    function = resolve_cell_function(config.cell_function, allow_import)
    out_dir = Path(out_dir)
    cells = build_cells(config)
    write_manifest(out_dir, config, [c.key for c in cells])
    pending = [c for c in cells if read_record(cell_path(out_dir, c.key)) is None]
    with tqdm(total=len(cells), initial=len(cells) - len(pending), unit="cell", desc="scan",
              disable=not progress) as bar:
        if pending and dask is None:
            _run_pool(pending, out_dir, function, workers or available_cores(), bar)
        elif pending:
            _run_dask(pending, out_dir, function, dask, workers, bar)
    return dict(total=len(cells), skipped=len(cells) - len(pending), computed=len(pending))
