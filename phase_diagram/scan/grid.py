"""The phase diagram from simulations alone: every point of a simplex grid decided by the scan's
rule on measured convergence, widths growing only where a point is still undetermined.

Points. The phase map's points (:func:`phase_diagram.finder.phase_map.map_points`): a
triangular grid u = (i, j, k)/K of the simplex (u_n > 0), three points on each theory segment
(continuous jump, penalized), the critical point and the discrete-jump vertex. Point u is the
power law τ_n = τ₀ n^(−u_τ/u_n), q_n = min(1, q₀ n^(−u_q/u_n)) with τ₀ = q₀ = ½ (q₀ < 1, so
the min never binds), whose theory phase is :func:`phase_diagram.theory.phases.classify` of
its exact exponents.

Decision rule: the scan's (:func:`phase_diagram.scan.summary.decide_phase`, stated in
:mod:`phase_diagram.finder.decision`). Each point is a scaling of a scan; its candidate limits
run with the theory's limit constants where the scaling defines them and with the ``nominal``
constants where it leaves them undefined (:mod:`phase_diagram.scan.cells`). A limit is named
only when its distance is clearly (95% intervals) falling with n and every other candidate is
clearly at least twice as far at the largest width; ``degenerate`` when every candidate
diverges or clearly moves away; otherwise ``undetermined at n <= N`` with the ratio or slope
that is missing, and its numbers. The rule never guesses: a point it cannot decide stays
undetermined.

Budget. Dropout at width n runs ⌈T/τ_n⌉ steps. A point whose dropout run at a width needs
more than ``max_steps`` steps is not run there: it is *beyond the step budget* when that
happens at the first widths (it is then never run), and otherwise stops growing at the last
width that fits (its reason says so).

Sequential widths (:func:`phase_diagram.scan.sequential.run_sequential`): the first stage
runs ``widths``; every point still undetermined gets the next width, twice the largest, up to
``max_width``, and is decided again on all its widths. Cells are the scan's: keyed and seeded
by their identity, one atomic record each, so a killed run resumes with nothing lost and the
numbers do not depend on the worker count or the backend.

Signal before statistics. The data are the scans' toy problem with its targets
scaled by ``target_scale`` (default 3, as the phase map): the limits differ by how far the
particles move, which grows with the size of the residual, while dropout's own fluctuation
around its limit (O(n^(−1/2)) per unit of motion) grows no faster, so larger targets widen the
gap between limits against the noise. The horizon T = 2 is long enough for the jump limits
(α = 1: two rings per particle on average) to depart from the flows, short enough that no
limit has converged to the same minimiser. The nominal constants α = β = 1 put each wrong
limit's own effect (jumps of size α, penalty β) at the scale of the right one's (the points'
own constants are α = 1 on the continuous-jump line and at the critical point, β = 2 on the
penalized line and at the critical point). The choice is the same for every point and is made
before any dropout run, so it cannot favour the theory's phase: the rule still has to find the
right limit among all candidates. :func:`limit_gaps` measures the gap it buys (limit against
limit, no dropout; N = 2048 particles, T = 2, sup over five times of the RMS predictor
difference), with targets ×1 → ×3: WGF vs the Poisson jump (α = 1) 0.009 → 0.055 (at a WGF
point and on the continuous-jump line); critical vs penalized WGF (β = 2) 0.033 → 0.092 (at
the critical point and on the penalized line); at the vertex (τ = q = ½) the Bernoulli jump
vs the flow 0.011 → 0.051 but vs the Poisson jump only 0.011 → 0.021. Dropout's own distance
to its (clock-coupled) limit at n = 512 is 0.017 on the continuous-jump line (b = ¼) and 0.015
at the critical point (0.012 at n = 2048), so with targets ×3 the competitor's gap stands
3–6 times above it, except the Poisson-vs-Bernoulli gap at the vertex, which grows slower
than the noise (why the vertex needs large widths).

Cost model (:func:`estimate_grid_cost`): seconds per cell from
:func:`phase_diagram.finder.plugin.dropout_seconds` and
:func:`~phase_diagram.finder.plugin.limit_seconds` (constants measured by
``benchmarks/bench_plugin_costs.py``), summed over the first stage (certain) and over every
later stage as if every point stayed undetermined (an upper bound).
"""
import dataclasses
import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np

from meanfield_dropout.convergence import (CLOCK_COUPLED, DEFAULT_DATA, estimate_cost,
                                           measure_distances)
from meanfield_dropout.data import load_dataset
from meanfield_dropout.limits import DEFAULT_DT, LIMITS, simulate_limit
from meanfield_dropout.validation import check_int, check_positive

from ..finder.phase_map import KEEP0, TAU0, map_points
from ..finder.plugin import dropout_seconds, limit_seconds
from ..theory.phases import DEGENERATE, classify
from .cell_functions import register_cell_function
from .cells import build_cells
from .config import ScalingSpec, ScanConfig
from .records import read_record, write_json_atomic
from .sequential import run_sequential, summarize_sequential
from .summary import DIVERGED

__all__ = ["GridConfig", "QUICK", "GridPoint", "GridSummary", "grid_points", "scan_config",
           "estimate_grid_cost", "decide_grid", "summarize_grid", "grid_distances",
           "limit_gaps", "BEYOND_BUDGET"]

#: Status of a point whose dropout run does not fit the step budget at the first widths.
BEYOND_BUDGET = "beyond budget"
#: Name of the grid's cell function in the scan registry.
CELL_FUNCTION = "grid_distances"


def grid_distances(width, master_lr, keep_prob, limits, *, alpha, beta, tau, horizon, seed,
                   target_scale=1.0, **options):
    """The grid's cell function: :func:`~meanfield_dropout.convergence.measure_distances` on
    the default data (``toy``) with the targets multiplied by ``target_scale``."""
    data = load_dataset(DEFAULT_DATA)
    return measure_distances(width, master_lr, keep_prob, limits, alpha=alpha, beta=beta,
                             tau=tau, horizon=horizon, seed=seed,
                             data=(data.inputs, target_scale * data.targets), **options)


def grid_cost(width, master_lr, keep_prob, limits, *, alpha, beta, tau, horizon, seed=None,
              target_scale=1.0, **options):
    """Memory and work of :func:`grid_distances` (:func:`~meanfield_dropout.convergence.
    estimate_cost` on the same data)."""
    data = load_dataset(DEFAULT_DATA)
    return estimate_cost(width, master_lr, keep_prob, limits, alpha=alpha, beta=beta, tau=tau,
                         horizon=horizon, data=(data.inputs, target_scale * data.targets),
                         **options)


register_cell_function(CELL_FUNCTION, grid_distances, grid_cost)


@dataclasses.dataclass(frozen=True)
class GridConfig:
    """Settings of a grid decision run.

    Attributes
    ----------
    grid : int
        K, the grid divisions.
    widths : tuple of int
        Widths of the first stage (at least two).
    max_width : int
        Largest width a point may grow to (doubling from the largest of ``widths``).
    repeats : int
        Independent repeats per point and width.
    horizon : float
        T, in time units t = k τ_n.
    seed : int
    max_steps : int
        Step budget: most dropout steps ⌈T/τ_n⌉ a point may run at one width.
    target_scale : float
        The teacher–student targets are multiplied by it.
    nominal_alpha, nominal_beta : float
        Constants of the candidate limits a scaling leaves undefined.
    n_times : int
        Grid times in [0, T]; the distance of a cell is the sup over them of the predictor
        error.
    clock_coupling : bool
        The ``jump-poisson`` and ``critical`` limits take their rings from dropout's keep
        draws (:class:`meanfield_dropout.limits.DropoutClock`).
    only : tuple of str
        Labels of the points to run (default: every point of the grid).
    """

    grid: int = 8
    widths: tuple = (256, 512)
    max_width: int = 16384
    repeats: int = 3
    horizon: float = 2.0
    seed: int = 0
    max_steps: int = 1 << 17
    target_scale: float = 3.0
    nominal_alpha: float = 1.0
    nominal_beta: float = 1.0
    n_times: int = 5
    clock_coupling: bool = True
    only: tuple = ()

    def __post_init__(self):
        check_int(self.grid, "grid", low=2, high=40)
        widths = tuple(sorted({check_int(w, "width", low=16, high=1 << 20)
                               for w in self.widths}))
        if len(widths) < 2:
            raise ValueError("widths must hold at least two distinct widths")
        object.__setattr__(self, "widths", widths)
        check_int(self.max_width, "max_width", low=widths[-1], high=1 << 20)
        check_int(self.repeats, "repeats", low=2, high=100)
        check_positive(self.horizon, "horizon")
        check_int(self.seed, "seed", low=0)
        check_int(self.max_steps, "max_steps", low=1)
        check_positive(self.target_scale, "target_scale")
        check_positive(self.nominal_alpha, "nominal_alpha")
        check_positive(self.nominal_beta, "nominal_beta")
        check_int(self.n_times, "n_times", low=2, high=101)
        object.__setattr__(self, "only", tuple(self.only))
        known = {p.label for p in map_points(self.grid)}
        unknown = sorted(set(self.only) - known)
        if unknown:
            raise ValueError(f"only: {unknown} are not points of a grid of {self.grid} "
                             f"divisions")

    @property
    def stage_widths(self):
        """The largest width of every possible stage: max(widths), then doublings up to
        ``max_width``."""
        out = [self.widths[-1]]
        while 2 * out[-1] <= self.max_width:
            out.append(2 * out[-1])
        return tuple(out)


#: The ``--quick`` run: a coarse grid at small widths, 5 repeats (the cost model's upper
#: bound: 8.4 CPU-minutes, about 4 minutes on 2 free cores).
QUICK = GridConfig(grid=4, widths=(64, 128), max_width=2048, repeats=5, max_steps=1 << 14)


def _power(coefficient, exponent):
    """The expression c n^(−b) for an exact b ≥ 0 ("c" when b = 0)."""
    return repr(coefficient) if exponent == 0 else f"{coefficient!r}*n**(-{exponent})"


@dataclasses.dataclass(frozen=True)
class GridPoint:
    """A point of the grid: its :class:`~phase_diagram.finder.phase_map.MapPoint`, the scan
    scaling through it and its theory phase."""

    point: object
    spec: ScalingSpec
    theory: str

    def master_lr(self, width):
        """τ_n = τ₀ n^(−b_τ)."""
        return float(TAU0) * width ** -float(self.point.exponents[0])

    def steps(self, config, width):
        """Dropout steps at ``width``: the nearest integer to T/τ_n, as the cell runs."""
        return int(np.rint(config.horizon / self.master_lr(width)))


def grid_points(divisions):
    """The :class:`GridPoint` s of a grid of ``divisions``, with their theory phases."""
    out = []
    for point in map_points(divisions):
        b_tau, b_keep = point.exponents
        spec = ScalingSpec(point.label, _power(float(TAU0), b_tau),
                           _power(float(KEEP0), b_keep))
        out.append(GridPoint(point, spec, classify(spec.scaling()).phase))
    return out


def _fits(config, point, width):
    return point.steps(config, width) <= config.max_steps


def scan_config(config, points):
    """The :class:`~phase_diagram.scan.config.ScanConfig` of the first stage over ``points``."""
    return ScanConfig(
        scalings=tuple(p.spec for p in points), widths=config.widths, repeats=config.repeats,
        seed=config.seed, horizon=config.horizon, limits=LIMITS,
        nominal=dict(alpha=config.nominal_alpha, beta=config.nominal_beta),
        metric="predictor", statistic="max", cell_function=CELL_FUNCTION,
        options=dict(target_scale=config.target_scale, n_times=config.n_times,
                     clock_coupling=config.clock_coupling))


def _split(config):
    """(points run, {label: reason} of the points beyond the step budget)."""
    run, beyond = [], {}
    for p in grid_points(config.grid):
        if config.only and p.point.label not in config.only:
            continue
        if all(_fits(config, p, w) for w in config.widths):
            run.append(p)
        else:
            width = next(w for w in config.widths if not _fits(config, p, w))
            beyond[p.point.label] = (f"dropout at n = {width} needs {p.steps(config, width)} "
                                     f"steps > the budget of {config.max_steps}")
    return run, beyond


#: CPU seconds per dropout keep draw a coupled clock reads (NumPy's uniform, the comparison
#: and the ring indices; 5.6 ns measured with ``time.process_time`` on 256 × 4096 draws).
UNIFORM_SECONDS = 6e-9


def _cell_seconds(cell, config, shape):
    """Estimated seconds (one core) of one scan cell (the flows' Heun step is the scan's,
    :data:`meanfield_dropout.limits.DEFAULT_DT`; a coupled clock reads one keep draw per
    particle and dropout step)."""
    horizon = config.horizon
    total = dropout_seconds(cell.width, cell.master_lr, cell.keep_prob, horizon, *shape)
    draws = cell.width * round(horizon / cell.master_lr)
    for name, constants in cell.limits.items():
        total += limit_seconds(name, constants, cell.width, horizon, *shape, dt=DEFAULT_DT)
        if config.clock_coupling and name in CLOCK_COUPLED:
            total += draws * UNIFORM_SECONDS
    return total


def _stage_cells(config, points, width):
    """The cells of ``points`` at ``width`` (a stage's new cells)."""
    if not points:
        return []
    stage = dataclasses.replace(scan_config(config, points), widths=(width // 2, width))
    return [c for c in build_cells(stage) if c.width == width]


def estimate_grid_cost(config):
    """Estimated core-seconds of a grid run before it starts.

    Returns
    -------
    dict
        ``points`` (run), ``beyond`` (beyond the step budget), ``first_stage`` (seconds of the
        first stage: certain), ``stages`` ({largest width: seconds of the new cells of that
        stage if every run point were still undetermined there}; points stop at the step
        budget) and ``upper_bound`` (the sum over the stages).
    """
    run, beyond = _split(config)
    shape = load_dataset(DEFAULT_DATA).inputs.shape
    first = [c for c in build_cells(scan_config(config, run))] if run else []
    stages = {config.widths[-1]: sum(_cell_seconds(c, config, shape) for c in first)}
    for width in config.stage_widths[1:]:
        points = [p for p in run if _fits(config, p, width)]
        stages[width] = sum(_cell_seconds(c, config, shape)
                            for c in _stage_cells(config, points, width))
    return dict(points=len(run), beyond=len(beyond), first_stage=stages[config.widths[-1]],
                stages=stages, upper_bound=sum(stages.values()))


def _grid_file(out_dir):
    return Path(out_dir) / "grid.json"


def decide_grid(config, out_dir, *, workers=None, dask=None, progress=True):
    """Run (or resume) the grid decision: the first stage, then larger widths where a point
    is still undetermined.

    Parameters
    ----------
    config : GridConfig
    out_dir : str or Path
        ``grid.json`` (the settings) and the scan directory ``scan/`` (manifest, cells,
        sequential stages).
    workers : int, optional
        Local worker processes (default: one per core), or Dask workers with ``dask="local"``.
    dask : str, optional
        A scheduler address, or ``"local"``; None: the local process pool.
    progress : bool

    Returns
    -------
    GridSummary
    """
    out_dir = Path(out_dir)
    run, _ = _split(config)
    if not run:
        raise ValueError(f"no point of the grid fits the step budget of {config.max_steps} "
                         f"steps at widths {config.widths}")
    write_json_atomic(_grid_file(out_dir), dataclasses.asdict(config))
    by_spec = {p.spec: p for p in run}
    run_sequential(scan_config(config, run), out_dir / "scan", max_width=config.max_width,
                   workers=workers, dask=dask, progress=progress,
                   fits=lambda spec, width: _fits(config, by_spec[spec], width))
    return summarize_grid(out_dir)


@dataclasses.dataclass(frozen=True)
class PointResult:
    """The outcome of one grid point.

    Attributes
    ----------
    point : GridPoint
    status : str
        ``"decided"``, ``"undetermined"``, ``"diverged"``, ``"beyond budget"`` or
        ``"not run"`` (no finished stage yet).
    phase : str or None
        The decided phase (``"degenerate"`` included), or None.
    width : int or None
        The largest width run.
    reason : str
    decision : Decision or None
        The scan's :class:`~phase_diagram.scan.summary.Decision` (slopes and fits per limit).
    seconds : float
        Measured CPU seconds of the point's cells.
    """

    point: GridPoint
    status: str
    phase: str | None
    width: int | None
    reason: str
    decision: object
    seconds: float

    @property
    def agrees(self):
        """True/False for a decision that matches/contradicts the theory, None otherwise."""
        return None if self.phase is None else self.phase == self.point.theory


@dataclasses.dataclass(frozen=True)
class GridSummary:
    """A grid decision run read back (:func:`summarize_grid`).

    Attributes
    ----------
    config : GridConfig
    results : list of PointResult
    decided_fraction : dict
        Largest width W → fraction of the run points (those within the step budget) decided
        with widths ≤ W.
    wrong : int
        Decisions that contradict the theory.
    predicted_seconds, measured_seconds : float
        The cost model's CPU seconds for the cells that ran, and their measured CPU seconds
        (each cell's process time, so the check does not depend on the machine's load).
    missing : int
        Cells not finished.
    """

    config: GridConfig
    results: list
    decided_fraction: dict
    wrong: int
    predicted_seconds: float
    measured_seconds: float
    missing: int

    def lines(self):
        """One line per point and a closing summary (the CLI's report)."""
        out = []
        for r in self.results:
            mark = {True: "agrees", False: "WRONG", None: "-"}[r.agrees]
            width = f"n<={r.width}" if r.width else ""
            out.append(f"{r.point.point.label:28s} theory={r.point.theory:14s} "
                       f"{r.status:13s} {r.phase or '':14s} {width:9s} {mark}")
            if r.status != "decided":
                out.append(f"    {r.reason}")
        run = [r for r in self.results if r.status != BEYOND_BUDGET]
        fractions = ", ".join(f"n<={w}: {f:.0%}" for w, f in self.decided_fraction.items())
        out.append(f"{len(run)} points within the step budget ({len(self.results) - len(run)} "
                   f"beyond); decided {fractions}; {self.wrong} wrong; cells "
                   f"{self.measured_seconds:.0f} CPU-s measured, {self.predicted_seconds:.0f} "
                   f"CPU-s predicted by the cost model"
                   + (f"; {self.missing} cells unfinished" if self.missing else ""))
        return out


def _read_grid_config(out_dir):
    data = read_record(_grid_file(out_dir))
    if data is None:
        raise ValueError(f"{out_dir} holds no grid decision run (no readable grid.json)")
    try:
        return GridConfig(**dict(data, widths=tuple(data["widths"]),
                                 only=tuple(data.get("only", ()))))
    except (TypeError, KeyError) as exc:
        raise ValueError(f"{_grid_file(out_dir)} is malformed: {exc}") from None


def _measured_seconds(out_dir):
    """{(τ expression, q expression): measured CPU seconds of its finished cells} (every
    stage shares ``scan/cells``; the wall-clock seconds of a record without ``cpu``)."""
    totals = {}
    for path in (Path(out_dir) / "scan" / "cells").glob("*.json"):
        record = read_record(path)
        identity = (record or {}).get("identity")
        if isinstance(identity, dict):
            key = (identity.get("tau"), identity.get("keep"))
            seconds = record.get("cpu", record.get("elapsed", 0.0))
            totals[key] = totals.get(key, 0.0) + float(seconds)
    return totals


def summarize_grid(out_dir):
    """Read a (possibly unfinished) grid decision run."""
    out_dir = Path(out_dir)
    config = _read_grid_config(out_dir)
    run, beyond = _split(config)
    _, scan_results, missing = summarize_sequential(out_dir / "scan")
    by_spec = {r.spec: r for r in scan_results}
    shape = load_dataset(DEFAULT_DATA).inputs.shape
    elapsed = _measured_seconds(out_dir)
    results, predicted, measured = [], 0.0, 0.0
    for p in grid_points(config.grid):
        label = p.point.label
        if config.only and label not in config.only:
            continue
        if label in beyond:
            results.append(PointResult(p, BEYOND_BUDGET, None, None, beyond[label], None, 0.0))
            continue
        r = by_spec.get(p.spec)
        d = None if r is None else r.decision
        seconds = elapsed.get((p.spec.tau, p.spec.keep), 0.0)
        measured += seconds
        if r is not None and r.widths:
            stage = dataclasses.replace(scan_config(config, [p]), widths=r.widths)
            predicted += sum(_cell_seconds(c, config, shape) for c in build_cells(stage))
        if d is None:
            results.append(PointResult(p, "not run", None, None, "no finished stage", None,
                                       seconds))
        elif d.phase == DIVERGED:
            results.append(PointResult(p, "diverged", None, d.width, d.reason, d, seconds))
        elif d.decided:
            results.append(PointResult(p, "decided", d.phase, d.width, d.reason, d, seconds))
        else:
            reason = d.reason
            after = 2 * d.width
            if after <= config.max_width and not _fits(config, p, after):
                reason += (f"; n = {after} needs {p.steps(config, after)} steps > the budget "
                           f"of {config.max_steps}")
            results.append(PointResult(p, "undetermined", None, d.width, reason, d, seconds))
    counted = [r for r in results if r.status != BEYOND_BUDGET]
    fractions = {w: (sum(r.status == "decided" and r.width <= w for r in counted)
                     / len(counted)) if counted else math.nan
                 for w in config.stage_widths}
    wrong = sum(r.agrees is False for r in results)
    return GridSummary(config, results, fractions, wrong, predicted, measured, missing)


def limit_gaps(config, point, *, particles=4096, seed=0):
    """The gap between limits at one point, with no dropout: sup over the grid times of the
    predictor distance between the theory's limit and every other candidate, each run with
    the constants the point's cells use and N = ``particles`` particles from one initial
    cloud.

    A decision needs this gap to stand clear of dropout's fluctuation around its limit
    (about the distance to the right limit at the widths run); the grid's data, horizon and
    nominal constants are chosen so that it does (module docstring).

    Returns
    -------
    dict
        competitor → gap (same units as the cells' distances), and ``"theory"`` → the
        theory's limit (None for a degenerate point: then the gaps are to ``wgf``).
    """
    cell = build_cells(dataclasses.replace(scan_config(config, [point]), repeats=1))[0]
    data = load_dataset(DEFAULT_DATA)
    inputs, targets = data.inputs, config.target_scale * data.targets
    times = np.linspace(0.0, config.horizon, config.n_times)
    reference = point.theory if point.theory != DEGENERATE else "wgf"
    predictors = {}
    for name, constants in cell.limits.items():
        predictors[name] = simulate_limit(name, inputs, targets, times=times,
                                          limit_particles=particles, seed=seed,
                                          **constants).predictor
    base = predictors[reference]
    gaps = {name: float(np.max(np.sqrt(np.mean((f - base) ** 2, axis=1))))
            for name, f in predictors.items() if name != reference}
    return dict(gaps, theory=None if point.theory == DEGENERATE else reference)
