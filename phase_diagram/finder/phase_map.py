"""Finite-width phase maps over the whole simplex: which limit describes dropout at width n.

Points. A triangular grid u = (i, j, k)/K of the simplex (u_n = i/K > 0: the edge u_n = 0
is no power law), plus points on the theory's lines (the continuous-jump segment
u_τ = u_q < u_n, the penalized segment u_n = u_q < u_τ) and its special points (the critical
point (⅓, ⅓, ⅓) and the discrete-jump vertex (1, 0, 0)). Each point u is the power law
τ_n = τ₀ n^(−u_τ/u_n), q_n = min(1, q₀ n^(−u_q/u_n)) with τ₀ = q₀ = 1/2 (so the vertex
is dropout with τ = q = 1/2, the continuous-jump segment has α = 1 and the critical
point α = 1, β = 2), whose simplex limit is u; its theory phase is
:func:`phase_diagram.theory.phases.classify` of that scaling (exact exponents).

Cells. At every width n and repeat, dropout runs against every limit with the plug-in
constants of that width (:mod:`phase_diagram.finder.plugin`), with the cost guard of that module; a
point whose dropout run alone exceeds the budget is "beyond budget" at that width. Cells are
keyed and seeded by their identity (``SeedSequence(seed, spawn_key=hash(identity))``) and kept
in a cell store of kind ``"phase map"`` (:mod:`meanfield_dropout.runtime.cells`), run on the
local process pool or on ``dask.distributed`` (:mod:`meanfield_dropout.runtime.runner`): one
JSON record per cell, written atomically and validated against its cell when read, claims so
that two maps into one directory compute each cell once, and a directory of another
configuration refused. A killed or interrupted map resumes, and the numbers do not depend on
the worker count or the backend.

Colour. Each point and width gets :func:`phase_diagram.finder.comparison.compare_candidates`
over its repeats: the nearest limit, and the simplest limit within 25% of it ("none" when no
limit is within 10% of the RMS of the targets).
"""
import dataclasses
import json
import math
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from meanfield_dropout.validation import check_int, check_output_dir, check_positive
from meanfield_dropout.convergence import DEFAULT_DATA
from meanfield_dropout.data import load_dataset
from meanfield_dropout.runtime import tables
from meanfield_dropout.runtime.cells import CellStore, cell_key, cell_seed, run_cells
from meanfield_dropout.runtime.runner import check_backend, check_workers

from .comparison import NONE, compare_candidates
from .plugin import FLOW_DT, candidate_limits, cell_seconds, measure_cell
from ..theory.power_logs import PowerLog
from ..theory.phases import DEGENERATE, classify
from ..theory.scalings import PowerLogScaling

__all__ = ["MapPoint", "MapConfig", "QUICK", "map_points", "simplex_grid", "build_map_cells",
           "estimated_seconds", "run_map_cell",
           "run_map", "summarize_map", "MapSummary"]

TAU0 = Fraction(1, 2)
KEEP0 = Fraction(1, 2)


@dataclasses.dataclass(frozen=True)
class MapPoint:
    """A point u of the simplex and the power law through it (τ₀ = q₀ = 1/2)."""

    label: str
    kind: str
    u: tuple

    @property
    def exponents(self):
        """(b_τ, b_q) = (u_τ/u_n, u_q/u_n) as exact fractions."""
        return self.u[1] / self.u[0], self.u[2] / self.u[0]

    def scaling(self):
        """The power law τ_n = τ₀ n^(−b_τ), q_n = min(1, q₀ n^(−b_q))."""
        b_tau, b_keep = self.exponents
        return PowerLogScaling(PowerLog(float(TAU0), -b_tau, Fraction(0)),
                               PowerLog(float(KEEP0), -b_keep, Fraction(0)), label=self.label)

    def values(self, width):
        """(τ_n, q_n) at width n."""
        b_tau, b_keep = self.exponents
        return (float(TAU0) * width ** -float(b_tau),
                min(1.0, float(KEEP0) * width ** -float(b_keep)))


def simplex_grid(divisions):
    """The grid points u = (i, j, k)/K, i + j + k = K, i ≥ 1, as :class:`MapPoint` s."""
    k = check_int(divisions, "grid", low=2, high=40)
    return [MapPoint(f"grid({i},{j},{k - i - j})", "grid",
                     (Fraction(i, k), Fraction(j, k), Fraction(k - i - j, k)))
            for i in range(k, 0, -1) for j in range(k - i + 1)]


def _from_exponents(label, kind, b_tau, b_keep):
    total = 1 + b_tau + b_keep
    return MapPoint(label, kind, (1 / total, b_tau / total, b_keep / total))


#: Exponents b of the points on the theory's segments: continuous jump τ_n, q_n ∝ n^(−b)
#: (b < 1), penalized τ_n ∝ n^(−b), q_n ∝ 1/n (b > 1).
POISSON_LINE = (Fraction(1, 4), Fraction(1, 2), Fraction(3, 4))
PENALIZED_LINE = (Fraction(7, 6), Fraction(4, 3), Fraction(3, 2))


def map_points(divisions):
    """The grid, three points on each theory segment and the two special points."""
    extra = [_from_exponents("critical point", "special", Fraction(1), Fraction(1)),
             _from_exponents("discrete-jump vertex", "special", Fraction(0), Fraction(0))]
    extra += [_from_exponents(f"jump-poisson line b={b}", "line", b, b) for b in POISSON_LINE]
    extra += [_from_exponents(f"penalized line b={b}", "line", b, Fraction(1))
              for b in PENALIZED_LINE]
    grid = simplex_grid(divisions)
    seen = {p.u for p in grid}
    return grid + [p for p in extra if p.u not in seen]


@dataclasses.dataclass(frozen=True)
class MapConfig:
    """Settings of a phase map (the ``map`` command).

    Attributes
    ----------
    grid : int
        K, the grid divisions (points u = (i, j, k)/K).
    widths : tuple of int
    repeats : int
    horizon : float
        T in time units t = k τ_n.
    seed : int
    budget : float
        Estimated seconds allowed for dropout and for each limit in one cell.
    limit_factor : int
        Limits run with N = limit_factor × n particles (copies of dropout's).
    n_times : int
    target_scale : float
        The targets are multiplied by it (default 3: the limits' gaps grow faster with the
        size of the motion than dropout's own noise does, so a map at moderate widths shows
        more than noise).
    data : str
        A named data set (:data:`~meanfield_dropout.data.DATASETS`), default ``toy``.
    """

    grid: int = 8
    widths: tuple = (256, 1024, 4096)
    repeats: int = 2
    horizon: float = 2.0
    seed: int = 0
    budget: float = 5.0
    limit_factor: int = 2
    n_times: int = 5
    target_scale: float = 3.0
    data: str = DEFAULT_DATA

    def __post_init__(self):
        check_int(self.grid, "grid", low=2, high=40)
        if isinstance(self.widths, (str, bytes)) or not hasattr(self.widths, "__iter__"):
            raise ValueError(f"widths must be a sequence of integers, got {self.widths!r}")
        widths = tuple(sorted({check_int(w, "width", low=16, high=1 << 16)
                               for w in self.widths}))
        if not widths:
            raise ValueError("widths must hold at least one width")
        object.__setattr__(self, "widths", widths)
        check_int(self.repeats, "repeats", low=2, high=50)
        check_positive(self.horizon, "horizon")
        check_int(self.seed, "seed", low=0)
        check_positive(self.budget, "budget")
        check_int(self.limit_factor, "limit_factor", low=1, high=16)
        check_int(self.n_times, "n_times", low=2, high=101)
        check_positive(self.target_scale, "target_scale")
        self.dataset()          # a data set that cannot be read is refused here

    def dataset(self):
        """(inputs, targets) of the map: the named data set, targets scaled."""
        d = load_dataset(self.data)
        return d.inputs, self.target_scale * d.targets


#: The ``--quick`` map: about a minute on 2 cores.
QUICK = MapConfig(grid=4, widths=(64, 256), repeats=2, budget=2.0, limit_factor=2)


@dataclasses.dataclass(frozen=True)
class MapCell:
    """One (point, width, repeat) unit of work, keyed and seeded by its ``identity``."""

    key: str
    identity: dict
    point: MapPoint
    width: int
    repeat: int
    master_lr: float
    keep_prob: float
    limits: dict
    skipped: dict
    seed: int


def build_map_cells(config):
    """The cells of a map and the (point, width) pairs beyond budget.

    Returns
    -------
    cells : list of MapCell
    beyond : dict
        (point label, width) → reason (dropout alone exceeds the budget).
    """
    shape = config.dataset()[0].shape
    cells, beyond = [], {}
    for point in map_points(config.grid):
        for width in config.widths:
            tau, keep = point.values(width)
            try:
                limits, skipped = candidate_limits(width, tau, keep, config.horizon,
                                                   *shape, budget=config.budget,
                                                   limit_factor=config.limit_factor)
            except ValueError as exc:
                beyond[(point.label, width)] = str(exc)
                continue
            for repeat in range(config.repeats):
                identity = dict(u=[str(x) for x in point.u], tau0=str(TAU0), keep0=str(KEEP0),
                                width=width, repeat=repeat, horizon=config.horizon,
                                limits=limits, limit_factor=config.limit_factor,
                                n_times=config.n_times, data=config.data,
                                target_scale=config.target_scale, flow_dt=FLOW_DT)
                cells.append(MapCell(cell_key(identity, config.seed), identity, point, width,
                                     repeat, tau, keep, limits, skipped,
                                     cell_seed(config.seed, identity)))
    return cells, beyond


def estimated_seconds(config):
    """Estimated core-seconds of the cells of ``config`` (the cost model of
    :mod:`phase_diagram.finder.plugin`)."""
    shape = config.dataset()[0].shape
    return sum(_cell_seconds(cell, config, shape) for cell in build_map_cells(config)[0])


def _cell_seconds(cell, config, shape):
    return cell_seconds(cell.width, cell.master_lr, cell.keep_prob, config.horizon, shape,
                        cell.limits, config.limit_factor, n_times=config.n_times)


def run_map_cell(cell, config):
    """Compute one cell (in a worker); returns its JSON record (the store adds the cell's key
    and identity)."""
    start = time.perf_counter()
    out = measure_cell(cell.width, cell.master_lr, cell.keep_prob, cell.limits,
                       config.horizon, cell.seed, config.dataset(),
                       n_times=config.n_times, limit_factor=config.limit_factor)
    distances = {name: dict(max=float(np.max(out[name]["predictor"][1:])),
                            final=float(out[name]["predictor"][-1]),
                            w2=float(out[name]["w2"][-1])) for name in cell.limits}
    return dict(point=cell.point.label, u=[str(x) for x in cell.point.u], width=cell.width,
                repeat=cell.repeat, master_lr=cell.master_lr, keep_prob=cell.keep_prob,
                seed=cell.seed, skipped=cell.skipped, diverged=out["diverged"],
                distances=distances, elapsed=time.perf_counter() - start)


_DISTANCES = ("max", "final", "w2")


def _record_problem(record, cell):
    """Why ``record``, whose key and identity are ``cell``'s, is not a finished record of it
    (None if it is): its seed, point, width, repeat, divergence report and the three
    distances to every candidate limit (finite unless the run diverged) are checked."""
    if record.get("seed") != cell.seed or record.get("point") != cell.point.label or \
            record.get("width") != cell.width or record.get("repeat") != cell.repeat:
        return "its seed, point, width or repeat differs from the cell's"
    diverged = record.get("diverged")
    if diverged is not None and not isinstance(diverged, str):
        return "has a malformed divergence report"
    elapsed = record.get("elapsed")
    if not isinstance(elapsed, (int, float)) or isinstance(elapsed, bool) or not elapsed >= 0:
        return "has no run time"
    distances = record.get("distances")
    if not isinstance(distances, dict) or set(distances) != set(cell.limits):
        return f"has no distances to every limit of the cell ({sorted(cell.limits)})"
    for name, value in distances.items():
        if not isinstance(value, dict) or set(value) != set(_DISTANCES):
            return f"its distances to {name} are not {list(_DISTANCES)}"
        for number in value.values():
            if not isinstance(number, (int, float)) or isinstance(number, bool) or (
                    diverged is None and not math.isfinite(number)):
                return f"its distance to {name} is not a finite number"
    return None


def map_store(out_dir, config):
    """The cell store of the phase map ``config`` in ``out_dir``."""
    return CellStore(out_dir, "phase map", dataclasses.asdict(config), check=_record_problem)


def run_map(config, out_dir, *, workers=None, dask=None, dask_timeout=None, progress=True):
    """Run (or resume) the cells of a phase map; finished cells are skipped.

    Parameters
    ----------
    config : MapConfig
    out_dir : str or Path
        A cell store: ``manifest.json``, ``cells/<key>.json`` and ``claims/<key>.lock``.
    workers, dask, dask_timeout, progress
        Where the cells run, as in :func:`~phase_diagram.scan.runner.run_scan`.

    Returns
    -------
    dict
        ``total``, ``skipped``, ``computed``, ``by_other`` (by another map into the same
        directory) and ``invalid`` (invalid records recomputed) cell counts, ``beyond``
        (point-width pairs beyond budget) and ``seconds`` (wall time).

    Raises
    ------
    ValueError
        Before any cell runs: ``out_dir`` is a file or holds another map's (or a scan's)
        cells; a scheduler that does not answer.
    Interrupted
        On Ctrl-C, once the workers are stopped (it says how many cells are kept).
    """
    start = time.perf_counter()
    if not isinstance(config, MapConfig):
        raise ValueError(f"config must be a MapConfig, got {type(config).__name__}")
    workers = check_workers(workers)
    check_backend(dask, dask_timeout)
    out_dir = check_output_dir(out_dir, "out_dir")
    cells, beyond = build_map_cells(config)
    store = map_store(out_dir, config).open(
        cells=[c.key for c in cells],
        beyond=[[label, width, why] for (label, width), why in beyond.items()])
    shape = config.dataset()[0].shape
    counts, _ = run_cells(cells, run_map_cell, store, args=(config,), workers=workers,
                          dask=dask, dask_timeout=dask_timeout, progress=progress, desc="map",
                          cost=lambda cell: _cell_seconds(cell, config, shape))
    return dict(counts, beyond=len(beyond), seconds=time.perf_counter() - start)


@dataclasses.dataclass(frozen=True)
class MapSummary:
    """A phase map read back (:func:`summarize_map`).

    Attributes
    ----------
    config : MapConfig
    points : list of MapPoint
    theory : dict
        point label → theory phase.
    comparisons : dict
        (label, width) → :class:`~phase_diagram.finder.comparison.Comparison` (finished points).
    beyond : dict
        (label, width) → why the point is beyond budget at that width.
    agreement : dict
        width → ``points`` (the points finished at every width), ``describes`` and
        ``nearest``: the fraction of them whose limit equals the theory's phase ("none" counts
        as agreeing with a degenerate scaling).
    cell_seconds : dict
        width → total compute seconds of its cells.
    missing : int
        Cells of the manifest not finished.
    """

    config: MapConfig
    points: list
    theory: dict
    comparisons: dict
    beyond: dict
    agreement: dict
    cell_seconds: dict
    missing: int

    __repr__ = tables.compact_repr

    def to_frame(self):
        """The map as a tidy table (pandas, the ``table`` extra): one row per finished point
        and width.

        Columns ``point`` (its label), ``u_n``, ``u_tau``, ``u_q`` (the simplex point),
        ``width``, ``master_lr``, ``keep_prob``, ``theory`` (the phase of the power law
        through it), ``nearest``, ``describes``, ``clear``, ``close``, ``relative`` (the
        nearest limit's distance / target RMS), ``agrees`` (``describes`` is the theory's
        phase) and the map's ``horizon``, ``repeats``, ``seed`` and ``data``.
        """
        c = self.config
        rows = []
        for point in self.points:
            for width in c.widths:
                cmp_ = self.comparisons.get((point.label, width))
                if cmp_ is None:
                    continue
                tau, keep = point.values(width)
                rows.append(dict(
                    point=point.label,
                    **dict(zip(("u_n", "u_tau", "u_q"), map(float, point.u))),
                    width=width, master_lr=float(tau), keep_prob=float(keep),
                    theory=self.theory[point.label], nearest=cmp_.nearest,
                    describes=cmp_.describes, clear=cmp_.clear, close=cmp_.close,
                    relative=cmp_.relative.get(cmp_.nearest, math.nan),
                    agrees=_agrees(cmp_.describes, self.theory[point.label]),
                    horizon=c.horizon, repeats=c.repeats, seed=c.seed, data=c.data))
        return tables.frame(rows)


def _agrees(limit, phase):
    return limit == phase or (limit == NONE and phase == DEGENERATE)


def summarize_map(out_dir):
    """Read a (possibly unfinished) map and compare each point with the theory.

    Records that are not valid for their cell are left out, with a warning
    (:class:`~meanfield_dropout.runtime.cells.CellWarning`), and counted as missing.
    """
    out_dir = Path(out_dir)
    config = _manifest_config(out_dir)
    points = map_points(config.grid)
    theory = {p.label: classify(p.scaling()).phase for p in points}
    cells, beyond = build_map_cells(config)
    values, problems = map_store(out_dir, config).scan(cells, "are left out")
    groups, seconds = {}, {w: 0.0 for w in config.widths}
    for record in values.values():
        groups.setdefault((record["point"], record["width"]), []).append(record)
        seconds[record["width"]] += record["elapsed"]
    scale = float(np.sqrt(np.mean(config.dataset()[1] ** 2)))
    comparisons = {}
    for (label, width), records in groups.items():
        if len(records) < config.repeats:
            continue
        records.sort(key=lambda r: r["repeat"])
        names = sorted(records[0]["distances"])
        comparisons[(label, width)] = compare_candidates(
            {name: [np.nan if r["diverged"] else r["distances"][name]["max"]
                    for r in records] for name in names}, scale=scale)
    common = [p.label for p in points
              if all((p.label, w) in comparisons for w in config.widths)]
    agreement = {}
    for width in config.widths:
        cmps = [(comparisons[(label, width)], theory[label]) for label in common]
        agreement[width] = dict(
            points=len(cmps),
            describes=float(np.mean([_agrees(c.describes, t) for c, t in cmps])) if cmps
            else float("nan"),
            nearest=float(np.mean([_agrees(c.nearest if c.close else NONE, t)
                                   for c, t in cmps])) if cmps else float("nan"))
    return MapSummary(config, points, theory, comparisons, beyond, agreement, seconds,
                      len(problems))


def _manifest_config(out_dir):
    """The :class:`MapConfig` of the map in ``out_dir`` (one-line ValueError naming the
    manifest if there is none or it is not a phase map's)."""
    path = Path(out_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{out_dir} holds no phase map (no manifest.json)") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is unreadable: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("kind", "phase map") != "phase map" \
            or not isinstance(manifest.get("config"), dict):
        raise ValueError(f"{path} is not the manifest of a phase map")
    fields = {f.name for f in dataclasses.fields(MapConfig)}
    table = manifest["config"]
    if set(table) != fields:
        raise ValueError(f"{path}: the phase map's config must have the entries "
                         f"{sorted(fields)}, got {sorted(table)}")
    try:
        return MapConfig(**dict(table, widths=tuple(table["widths"])))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: invalid phase map config: {exc}") from None
