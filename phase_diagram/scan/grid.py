"""The phase diagram from simulations alone: every point of a simplex grid decided by the scan's
rule on measured convergence, widths growing only where a point is still undetermined.

Points and the step budget: :mod:`phase_diagram.scan.grid_points` (the map's points, each
the power law through it, and the dropout steps a point may run at one width).

Decision rule: the scan's (:func:`phase_diagram.scan.summary.decide_phase`, stated in
:mod:`phase_diagram.finder.decision`). Each point is a scaling of a scan; its candidate limits
run with the theory's limit constants where the scaling defines them and with the ``nominal``
constants where it leaves them undefined (:mod:`phase_diagram.scan.cells`). A limit is named
only when its distance is clearly (95% intervals) falling with n and every other candidate is
clearly at least twice as far at the largest width; ``degenerate`` when every candidate
diverges or clearly moves away, when dropout never moves (no neuron kept) while no limit falls,
or when dropout explodes at every width of the window after a quiet one; otherwise
``undetermined at n <= N`` with the ratio or slope that is missing, and its numbers. The rule
never guesses: a point it cannot decide stays undetermined. The rule's not-falling option
(``flat_slope``: ``degenerate`` also when every candidate is clearly not falling; off by
default, and why, in :mod:`phase_diagram.finder.decision`) is applied when the records are read
(:func:`summarize_grid`): the widths grow by the default rule, the option only adds decisions,
and each point is read at the first stage it is decided, so one run's directory serves both
readings.

Sequential allocation (:func:`phase_diagram.scan.sequential.run_sequential`): the first
stage runs ``widths`` with ``repeats``; every point still undecided takes one step and is
decided again on all its cells: twice the repeats (up to ``max_repeats``) where the rule's
point estimates decide and only the intervals block, half the smallest width (down to
``min_width``) where dropout exploded at every width it ran, else the next width, twice the
largest, up to ``max_width`` and the step budget. Cells are the scan's: keyed and seeded
by their identity (repeat index included), one atomic record each in the scan's cell store
(:mod:`meanfield_dropout.runtime.cells`), so a killed or interrupted run resumes with nothing
lost and the numbers do not depend on the worker count or the backend; a directory of another
grid configuration is refused.

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

Cost model (:func:`estimate_grid_cost`): seconds per cell from the cells' cost estimator
(:func:`grid_cost`: :func:`meanfield_dropout.cost_model.cell_seconds`, constants measured by
``benchmarks/bench_plugin_costs.py`` and ``benchmarks/bench_cell_costs.py``), summed over the
first stage (certain) and over every later stage as if every point stayed undetermined (an
upper bound).
"""
import dataclasses
import math
from pathlib import Path

import numpy as np

from meanfield_dropout.convergence import DEFAULT_DATA
from meanfield_dropout.data import load_dataset
from meanfield_dropout.limits import LimitConstants, simulate_limit
from meanfield_dropout.network import network_data
from meanfield_dropout.runtime.cells import read_json, write_json

from ..finder.decision import not_falling_note
from ..theory.phases import DEGENERATE
from .cell_functions import distances_cell, distances_cost, register_cell_function
from .cells import build_cells
from .runner import cell_costs
from .grid_points import (BEYOND_BUDGET, CELL_FUNCTION, QUICK, GridConfig, GridPoint,
                          grid_points, scan_config, split_points)
from .sequential import run_sequential, summarize_sequential
from .summary import DIVERGED

__all__ = ["GridConfig", "QUICK", "GridPoint", "GridSummary", "PointResult", "grid_points",
           "scan_config", "estimate_grid_cost", "decide_grid", "summarize_grid",
           "grid_distances", "limit_gaps", "BEYOND_BUDGET"]


def grid_distances(width, master_lr, keep_prob, limits, *, alpha, beta, tau, horizon, seed,
                   target_scale=1.0, **options):
    """The grid's cell function: :func:`~meanfield_dropout.convergence.measure_distances` on
    the default data (``toy``) with the targets multiplied by ``target_scale``."""
    data = load_dataset(DEFAULT_DATA)
    return distances_cell(width, master_lr, keep_prob, limits, alpha=alpha, beta=beta, tau=tau,
                          horizon=horizon, seed=seed,
                          data=(data.inputs, target_scale * data.targets), **options)


def grid_cost(width, master_lr, keep_prob, limits, *, alpha, beta, tau, horizon, seed=None,
              target_scale=1.0, **options):
    """Memory and work of :func:`grid_distances` (:func:`~meanfield_dropout.convergence.
    estimate_cost` on the same data)."""
    data = load_dataset(DEFAULT_DATA)
    return distances_cost(width, master_lr, keep_prob, limits, alpha=alpha, beta=beta, tau=tau,
                          horizon=horizon, data=(data.inputs, target_scale * data.targets),
                          **options)


register_cell_function(CELL_FUNCTION, grid_distances, grid_cost)


def _seconds(cells):
    """Estimated seconds (one core) of grid cells: their cell function's cost estimator
    (:func:`grid_cost`, the model of :func:`meanfield_dropout.cost_model.cell_seconds`)."""
    return sum(seconds for _, seconds in cell_costs(cells, grid_distances)) if cells else 0.0


def _stage_cells(config, points, width):
    """The cells of ``points`` at ``width`` (a stage's new cells)."""
    if not points:
        return []
    stage = dataclasses.replace(scan_config(config, points), widths=(width, 2 * width))
    return [c for c in build_cells(stage) if c.width == width]


def estimate_grid_cost(config):
    """Estimated core-seconds of a grid run before it starts.

    Returns
    -------
    dict
        ``points`` (run), ``beyond`` (beyond the step budget), ``first_stage`` (seconds of the
        first stage: certain), ``stages`` ({largest width: seconds of the new cells of that
        stage, with the first stage's repeats, if every run point were still undetermined
        there}; points stop at the step budget), ``smaller`` (seconds of every point at the
        widths from ``min_width`` below the first stage's) and ``upper_bound`` (every point
        at every width it may run, with ``max_repeats`` repeats: a bound, never reached, as a
        point is given repeats only where its intervals alone block it and smaller widths only
        where dropout explodes).
    """
    run, beyond = split_points(config)
    first = [c for c in build_cells(scan_config(config, run))] if run else []
    stages = {config.widths[-1]: _seconds(first)}
    for width in config.stage_widths[1:]:
        points = [p for p in run if p.fits(config, width)]
        stages[width] = _seconds(_stage_cells(config, points, width))
    smaller, width = 0.0, config.widths[0] // 2
    while width >= config.min_width:
        smaller += _seconds(_stage_cells(config, run, width))
        width //= 2
    bound = (sum(stages.values()) + smaller) * config.max_repeats / config.repeats
    return dict(points=len(run), beyond=len(beyond), first_stage=stages[config.widths[-1]],
                stages=stages, smaller=smaller, upper_bound=bound)


def _grid_file(out_dir):
    return Path(out_dir) / "grid.json"


def decide_grid(config, out_dir, *, workers=None, dask=None, dask_timeout=None, progress=True,
                flat_slope=None):
    """Run (or resume) the grid decision: the first stage, then larger widths where a point
    is still undetermined.

    Parameters
    ----------
    config : GridConfig
    out_dir : str or Path
        ``grid.json`` (the settings) and the scan directory ``scan/`` (manifest, cells,
        sequential stages).
    workers, dask, dask_timeout, progress
        Where the cells run, as in :func:`~phase_diagram.scan.runner.run_scan`.
    flat_slope : float, optional
        The not-falling option of the summary (:func:`summarize_grid`). The widths grow by
        the default rule, so a directory serves both readings.

    Returns
    -------
    GridSummary

    Raises
    ------
    ValueError
        Before any cell runs: no point fits the step budget, or ``out_dir`` holds a grid
        decision of another configuration.
    Interrupted
        On Ctrl-C, once the workers are stopped (it says how many cells are kept).
    """
    out_dir = Path(out_dir)
    run, _ = split_points(config)
    if not run:
        raise ValueError(f"no point of the grid fits the step budget of {config.max_steps} "
                         f"steps at widths {config.widths}")
    if _grid_file(out_dir).exists() and _read_grid_config(out_dir) != config:
        raise ValueError(f"{out_dir} holds a grid decision of another configuration (see its "
                         f"grid.json); give another directory to start a new grid decision, "
                         f"or delete this one")
    write_json(_grid_file(out_dir), dataclasses.asdict(config))
    by_spec = {p.spec: p for p in run}
    run_sequential(scan_config(config, run), out_dir / "scan", max_width=config.max_width,
                   workers=workers, dask=dask, dask_timeout=dask_timeout, progress=progress,
                   fits=lambda spec, width: by_spec[spec].fits(config, width),
                   max_repeats=config.max_repeats, min_width=config.min_width)
    return summarize_grid(out_dir, flat_slope)


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
    repeats : int or None
        Repeats per width of its decision's cells (more than the first stage's where the
        intervals alone blocked it).
    """

    point: GridPoint
    status: str
    phase: str | None
    width: int | None
    reason: str
    decision: object
    seconds: float
    repeats: int | None = None

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
        The cost model's CPU seconds for the cells of the widths each decision used, and
        their measured CPU seconds
        (each cell's process time, so the check does not depend on the machine's load).
    missing : int
        Cells not finished.
    flat_slope : float or None
        The rule's not-falling option the decisions were read with (None: off).
    """

    config: GridConfig
    results: list
    decided_fraction: dict
    wrong: int
    predicted_seconds: float
    measured_seconds: float
    missing: int
    flat_slope: float | None = None

    @property
    def rule_note(self):
        """Empty with the default rule; with the not-falling option, what it adds."""
        return not_falling_note(self.flat_slope)

    def lines(self):
        """One line per point and a closing summary (the CLI's report)."""
        out = []
        for r in self.results:
            mark = {True: "agrees", False: "WRONG", None: "-"}[r.agrees]
            width = f"n<={r.width}" if r.width else ""
            repeats = f"R={r.repeats}" if r.repeats else ""
            out.append(f"{r.point.point.label:28s} theory={r.point.theory:14s} "
                       f"{r.status:13s} {r.phase or '':14s} {width:9s} {repeats:5s} {mark}")
            if r.status != "decided":
                out.append(f"    {r.reason}")
        run = [r for r in self.results if r.status != BEYOND_BUDGET]
        fractions = ", ".join(f"n<={w}: {f:.0%}" for w, f in self.decided_fraction.items())
        out.append(f"{len(run)} points within the step budget ({len(self.results) - len(run)} "
                   f"beyond); decided {fractions}; {self.wrong} wrong; cells "
                   f"{self.measured_seconds:.0f} CPU-s measured, {self.predicted_seconds:.0f} "
                   f"CPU-s predicted by the cost model"
                   + (f"; {self.missing} cells unfinished" if self.missing else "")
                   + (f"; {self.rule_note}" if self.rule_note else ""))
        return out


def _read_grid_config(out_dir):
    data = read_json(_grid_file(out_dir))
    if data is None:
        raise ValueError(f"{out_dir} holds no grid decision run (no readable grid.json)")
    try:
        return GridConfig(**dict(data, widths=tuple(data["widths"]),
                                 only=tuple(data.get("only", ()))))
    except (TypeError, KeyError) as exc:
        raise ValueError(f"{_grid_file(out_dir)} is malformed: {exc}") from None


def _measured_seconds(out_dir):
    """{(τ expression, q expression): {width: measured CPU seconds of its finished cells}}
    (every stage shares ``scan/cells``; the wall-clock seconds of a record without ``cpu``)."""
    totals = {}
    for path in (Path(out_dir) / "scan" / "cells").glob("*.json"):
        record = read_json(path)
        identity = (record or {}).get("identity")
        if isinstance(identity, dict):
            widths = totals.setdefault((identity.get("tau"), identity.get("keep")), {})
            seconds = float(record.get("cpu", record.get("elapsed", 0.0)))
            widths[identity.get("width")] = widths.get(identity.get("width"), 0.0) + seconds
    return totals


def summarize_grid(out_dir, flat_slope=None):
    """Read a (possibly unfinished) grid decision run.

    Parameters
    ----------
    out_dir : str or Path
    flat_slope : float, optional
        The rule's not-falling option (:func:`~phase_diagram.finder.decision.
        decide_asymptotic`), applied to the records as they are read (no part of the run's
        configuration: a run's directory can be read with and without it).
    """
    out_dir = Path(out_dir)
    config = _read_grid_config(out_dir)
    run, beyond = split_points(config)
    _, scan_results, missing = summarize_sequential(out_dir / "scan", flat_slope)
    by_spec = {r.spec: r for r in scan_results}
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
        # the cells of the widths its decision used, as the prediction below (with the
        # not-falling option a point may be decided before the last stage it ran)
        last = max(r.widths) if r is not None and r.widths else math.inf
        seconds = sum(v for w, v in elapsed.get((p.spec.tau, p.spec.keep), {}).items()
                      if w is not None and w <= last)
        measured += seconds
        repeats = r.repeats if r is not None and r.widths else None
        if repeats:
            stage = dataclasses.replace(scan_config(config, [p]), widths=r.widths,
                                        repeats=repeats)
            predicted += _seconds(build_cells(stage))
        if d is None:
            results.append(PointResult(p, "not run", None, None, "no finished stage", None,
                                       seconds))
        elif d.phase == DIVERGED:
            results.append(PointResult(p, "diverged", None, d.width, d.reason, d, seconds,
                                       repeats))
        elif d.decided:
            results.append(PointResult(p, "decided", d.phase, d.width, d.reason, d, seconds,
                                       repeats))
        else:
            reason = d.reason
            after = 2 * d.width
            if after <= config.max_width and not p.fits(config, after):
                reason += (f"; n = {after} needs {p.steps(config, after)} steps > the budget "
                           f"of {config.max_steps}")
            results.append(PointResult(p, "undetermined", None, d.width, reason, d, seconds,
                                       repeats))
    counted = [r for r in results if r.status != BEYOND_BUDGET]
    fractions = {w: (sum(r.status == "decided" and r.width <= w for r in counted)
                     / len(counted)) if counted else math.nan
                 for w in config.stage_widths}
    wrong = sum(r.agrees is False for r in results)
    return GridSummary(config, results, fractions, wrong, predicted, measured, missing,
                       flat_slope)


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
    train = network_data(data.inputs, config.target_scale * data.targets, activation="tanh")
    times = np.linspace(0.0, config.horizon, config.n_times)
    reference = point.theory if point.theory != DEGENERATE else "wgf"
    predictors = {}
    for name, constants in cell.limits.items():
        predictors[name] = simulate_limit(name, train, LimitConstants(**constants),
                                          times=times, limit_particles=particles,
                                          seed=seed).predictor
    base = predictors[reference]
    gaps = {name: float(np.max(np.sqrt(np.mean((f - base) ** 2, axis=1))))
            for name, f in predictors.items() if name != reference}
    return dict(gaps, theory=None if point.theory == DEGENERATE else reference)
