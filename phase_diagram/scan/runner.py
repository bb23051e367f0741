"""Run (or resume) a scan: its pending cells on the local process pool or on Dask.

Each cell's seed comes from ``np.random.SeedSequence(root_seed, spawn_key=...)`` keyed by the
cell's identity, so the numbers do not depend on the worker count, the order or the backend.
Finished cells (valid records, :func:`~phase_diagram.scan.records.record_problem`) are
skipped, so a killed scan resumes without computing any cell twice; invalid records are
recomputed, with a warning. A cell is computed under a claim
(:mod:`phase_diagram.scan.claims`), so two scans into one directory share the cells instead of
computing each twice. Before the first cell runs, the scan checks that its largest cells fit
in memory side by side and warns about a long scan (the cell function's cost estimator,
:mod:`phase_diagram.scan.cell_functions`).
"""
import time
from pathlib import Path

import numba
import numpy as np
from tqdm.auto import tqdm

from meanfield_dropout.engine import DivergenceError
from meanfield_dropout.validation import check_int
from meanfield_dropout.runtime.memory import (NOMINAL_RATE, announce_cost, check_memory,
                                             format_bytes, warn_long_run)
from meanfield_dropout.runtime.runner import available_cores, run_unordered

from .cell_functions import COST_ESTIMATORS, resolve_cell_function
from .cells import build_cells
from .claims import claimant, try_claim, wait_for_release
from .records import (cell_path, check_records, read_record, record_problem, write_json_atomic,
                      write_manifest)


def _arguments(cell):
    """The positional and keyword arguments of the cell function for ``cell``."""
    return ((cell.width, cell.master_lr, cell.keep_prob,
             {lim: dict(c) for lim, c in cell.limits.items()}),
            dict(horizon=cell.identity["horizon"], seed=cell.seed, **cell.constants,
                 **cell.identity["options"]))


def run_cell(cell, out_dir, function):
    """Compute one cell with the cell function ``function`` under a claim, write its record
    atomically to ``DIR/cells/<key>.json`` and return it.

    The record holds the settings, (τ_n, q_n), the constants, the seed, the wall-clock
    ``elapsed`` and the process's ``cpu`` seconds of the cell and, for each limit, the
    distance array returned by the cell function; for a run that diverged
    (:class:`~meanfield_dropout.engine.DivergenceError`, or non-finite distances) it holds
    ``diverged`` = {``step``, ``variant``, ``message``} and no distances. When another process
    holds the cell's claim, returns ``{"key", "claimed_by"}``; when the cell was finished by
    another scan meanwhile, ``{"key", "done_elsewhere": True}``.
    """
    # One active Numba thread also on Dask workers (the setting is per calling thread).
    numba.set_num_threads(1)
    claim = try_claim(out_dir, cell.key)
    if claim is None:
        return dict(key=cell.key, claimed_by=claimant(out_dir, cell.key))
    with claim:
        if record_problem(read_record(cell_path(out_dir, cell.key)), cell) is None:
            return dict(key=cell.key, done_elsewhere=True)
        start, cpu_start = time.perf_counter(), time.process_time()
        args, kwargs = _arguments(cell)
        try:
            distances, diverged = _distances(cell, function(*args, **kwargs)), None
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
        record = dict(
            key=cell.key, identity=cell.identity, name=cell.scaling.name,
            master_lr=cell.master_lr, keep_prob=cell.keep_prob, constants=cell.constants,
            seed=cell.seed, elapsed=time.perf_counter() - start,
            cpu=time.process_time() - cpu_start, diverged=diverged,
            distances=distances)
        write_json_atomic(cell_path(out_dir, cell.key), record)
    return record


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


def _check_cost(cells, function, workers):
    """Refuse a scan whose ``workers`` largest cells do not fit in memory side by side, and
    warn about a long one (no check for a cell function without a cost estimator)."""
    estimate = COST_ESTIMATORS.get(function)
    if estimate is None or not cells:
        return
    costs, seen = [], {}
    for cell in cells:
        where = (cell.scaling, cell.width)
        if where not in seen:
            args, kwargs = _arguments(cell)
            seen[where] = estimate(*args, **kwargs)
        costs.append((seen[where], cell.width))
    largest = sorted(costs, key=lambda c: -c[0][0])[:max(1, min(workers, len(cells)))]
    check_memory(sum(c[0][0] for c in largest),
                 f"{len(largest)} cell(s) at once (the largest, at width {largest[0][1]}, "
                 f"needs {format_bytes(largest[0][0][0])})",
                 "use fewer workers or smaller widths")
    operations = warn_long_run(sum(c[0][1] for c in costs), f"the scan of {len(cells)} cells",
                               "use fewer repeats, smaller widths or a shorter horizon")
    announce_cost(operations / NOMINAL_RATE, f"the scan of {len(cells)} cells", workers)


def _pool_records(cells, out_dir, function, workers):
    # Always in worker processes: a cell that crashes its process must not end the scan's.
    tasks = [(cell, str(out_dir), function) for cell in cells]
    for _, record in run_unordered(run_cell, tasks, workers, always_spawn=True):
        yield record


def _dask_records(cells, out_dir, function, address, workers):
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
            yield record
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
        Output directory: ``manifest.json``, ``cells/<key>.json`` and ``claims/<key>.lock``.
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
        ``total``; ``skipped`` (finished before the scan started), ``computed`` (by this scan)
        and ``by_other`` (by another scan running into the same directory) cells;
        ``invalid``, the records found invalid and recomputed.

    Raises
    ------
    ValueError
        For a bad configuration, or a scan that would not fit in memory
        (:class:`~meanfield_dropout.runtime.memory.MemoryLimitError`), before any cell runs.
    """
    workers = None if workers is None else check_int(workers, "workers", low=1)
    function = resolve_cell_function(config.cell_function, allow_import)
    out_dir = Path(out_dir)
    cells = build_cells(config)
    concurrent = (workers or available_cores()) if dask is None else (workers or 1)
    _check_cost(cells, function, concurrent)
    write_manifest(out_dir, config, [c.key for c in cells])
    problems = check_records(out_dir, cells, "are recomputed")
    pending = [c for c in cells if c.key in problems]
    counts = dict(total=len(cells), skipped=len(cells) - len(pending), computed=0, by_other=0,
                  invalid=sum(p != "missing" for p in problems.values()))
    with tqdm(total=len(cells), initial=counts["skipped"], unit="cell", desc="scan",
              disable=not progress) as bar:
        while pending:
            by_key = {c.key: c for c in pending}
            records = (_pool_records(pending, out_dir, function, workers or available_cores())
                       if dask is None else
                       _dask_records(pending, out_dir, function, dask, workers))
            claimed = []
            for record in records:
                if "claimed_by" in record:
                    claimed.append(by_key[record["key"]])
                    continue
                if record.get("done_elsewhere"):
                    counts["by_other"] += 1
                else:
                    _store(record, out_dir)
                    counts["computed"] += 1
                bar.update(1)
            pending = _after_claims(claimed, out_dir, counts, bar)
    return counts


def _store(record, out_dir):
    """Write a record a worker could not write (no shared file system)."""
    path = cell_path(out_dir, record["key"])
    if not path.exists():
        write_json_atomic(path, record)


def _after_claims(claimed, out_dir, counts, bar):
    """Wait for the cells another process claimed; return those it left unfinished."""
    left = []
    for cell in claimed:
        wait_for_release(out_dir, cell.key)
        if record_problem(read_record(cell_path(out_dir, cell.key)), cell) is None:
            counts["by_other"] += 1
            bar.update(1)
        else:
            left.append(cell)
    return left
