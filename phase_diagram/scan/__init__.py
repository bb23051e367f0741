"""Empirical phase-diagram scans: scalings × widths × repeats, resumable and parallel.

For every cell (scaling, width n, repeat r) a *cell function* runs dropout at width n with
(τ_n, q_n) and the candidate limit dynamics, and returns the distance between them for each
limit; the phase whose limit the distances approach is compared with the theory (Chizat,
Marion & Yesbay, 2025).

* :mod:`.config` — the TOML configuration (``examples/phase_scan.toml``), validated once;
* :mod:`.cell_functions` — the registry of cell functions (default
  :func:`meanfield_dropout.convergence.measure_distances`);
* :mod:`.cells` — the cells, keyed and seeded by their identity, with their candidate limits;
* :mod:`.records` — the scan directory, a cell store (:mod:`meanfield_dropout.runtime.cells`):
  ``manifest.json``, one atomic JSON record per cell, validated against its cell when read,
  and per-cell claims, so that two scans into one directory share the work;
* :mod:`.runner` — :func:`run_scan` on the local process pool or on Dask;
* :mod:`.summary` — :func:`summarize`: theory vs the empirical phase of each scaling;
* :mod:`.sequential` — sequential scans: undecided scalings get more width, more repeats
  (where only the intervals block) or smaller widths (where dropout explodes everywhere), up
  to a budget;
* :mod:`.grid_points`, :mod:`.grid` — the phase diagram from simulations alone: every point of
  a simplex grid decided by the scan's rule.

Guarantees: a rerun skips finished cells, so a killed scan resumes with nothing lost and no
finished cell computed twice; a record that is not valid for its cell (truncated, edited,
another cell's) is recomputed, with a warning; a diverged run is recorded as a divergence
with its step and makes its scaling's detected phase ``"diverged"``; two scans into one
directory compute each cell once; a directory of another configuration is refused; pool
workers exit when the scan's process dies, and Ctrl-C stops them. Each cell's
seed depends on its identity only, so the numbers do not depend on the worker count, the
order or the backend (local process pool or Dask).
"""
from .cell_functions import (CELL_FUNCTIONS, DEFAULT_CELL_FUNCTION, register_cell_function,
                             resolve_cell_function)
from .cells import Cell, build_cells
from .config import STATISTICS, ScalingSpec, ScanConfig, config_from_dict, load_config
from .records import ScanWarning
from .runner import run_cell, run_scan
from .summary import DIVERGED, Decision, ScalingResult, decide_phase, load_records, summarize

__all__ = [
    "CELL_FUNCTIONS", "DEFAULT_CELL_FUNCTION", "STATISTICS", "ScanConfig", "ScalingSpec",
    "Cell", "Decision", "ScalingResult", "load_config", "config_from_dict", "build_cells",
    "register_cell_function", "resolve_cell_function", "run_scan", "run_cell",
    "load_records", "decide_phase", "summarize", "DIVERGED", "ScanWarning",
]
