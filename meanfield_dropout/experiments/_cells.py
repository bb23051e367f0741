"""Independent cells of an experiment on the process pool or on Dask, resumable from a directory.

A cell is one call ``function(*task)`` returning a registered result dataclass. With a cell
directory every finished cell is written there atomically (the results codec) under its
name, and a later run with the same settings skips the cells it finds, so a killed run
resumes where it stopped; ``manifest.json`` records the settings the cells belong to.
"""
import dataclasses
import json
from pathlib import Path

from ..runtime import results
from ..runtime.runner import run_unordered
from ..runtime.threads import kernel_threads


def open_cell_dir(cells_dir, settings):
    """Create ``cells_dir`` for ``settings`` or check that it holds cells of the same settings."""
    if cells_dir is None:
        return None
    cells_dir = Path(cells_dir)
    cells_dir.mkdir(parents=True, exist_ok=True)
    manifest = cells_dir / "manifest.json"
    record = json.dumps(_plain(settings), sort_keys=True)
    if manifest.exists():
        try:
            stored = json.dumps(json.loads(manifest.read_text()), sort_keys=True)
        except ValueError:
            stored = None
        if stored != record:
            raise ValueError(f"{cells_dir} holds cells of other settings (see its "
                             f"manifest.json); use another --cells-dir or delete it")
    else:
        manifest.write_text(record)
    return cells_dir


def _plain(settings):
    return {k: (list(v) if isinstance(v, tuple) else v)
            for k, v in dataclasses.asdict(settings).items()}


def finished(cells_dir, name, cls):
    """The cached cell ``name`` of ``cells_dir``, or None if missing or unreadable."""
    if cells_dir is None:
        return None
    path = Path(cells_dir) / f"{name}.npz"
    try:
        return results.load(path, cls) if path.exists() else None
    except ValueError:
        return None


def save_cell(cells_dir, name, result):
    """Write a finished cell (atomically) if there is a cell directory."""
    if cells_dir is not None:
        results.save(result, Path(cells_dir) / f"{name}.npz")
    return result


def run_cells(function, tasks, workers, dask=None):
    """Yield ``(index, function(*tasks[index]))`` as cells finish.

    ``dask`` None runs on the local process pool (:func:`meanfield_dropout.runtime.runner.
    run_unordered`); ``"local"`` on a ``dask.distributed.LocalCluster`` of ``workers``
    single-threaded processes; any other string is a scheduler address.
    """
    if dask is None:
        yield from run_unordered(function, tasks, workers)
        return
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise RuntimeError("dask.distributed is not installed: pip install -e .[distributed]") \
            from None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None) if dask == "local" else None
    try:
        client = Client(cluster if cluster is not None else dask)
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise ValueError(f"dask: cannot connect to the scheduler {dask!r}: {exc}") from None
    try:
        futures = {client.submit(_one_thread, function, *task, pure=False): index
                   for index, task in enumerate(tasks)}
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _one_thread(function, *args):
    """Run a cell with one Numba thread (a Dask worker's thread is one core)."""
    with kernel_threads():
        return function(*args)
