"""Runtime infrastructure shared by every experiment: written once.

* :mod:`.threads` — the thread limits of the kernels (Numba threads by size, BLAS on one);
* :mod:`.runner` — independent tasks on a local process pool or on ``dask.distributed``, one
  Numba and one BLAS thread each, with bounded scheduler connections and clean interrupts;
* :mod:`.cells` — the resumable keyed cell store (atomic, validated records, claims, one
  configuration per directory) and :func:`~.cells.run_cells`, which fills it on the runner;
* :mod:`.memory` — memory estimates and the guard that refuses a run before it allocates;
* :mod:`.results` — the one result file format (a registered dataclass ↔ one ``.npz``) and the
  atomic file writer;
* :mod:`.tables` — results as tables: a compact ``repr`` of every result and pandas
  DataFrames;
* :mod:`.lazy` — package attributes imported on first use (matplotlib only when a figure is
  drawn);
* :mod:`.compiling` — compiling a run's kernels before it starts, saying so, and on a cold
  cache compiling the engine's callees in two processes.
"""
