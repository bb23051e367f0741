"""Which limit describes a concrete network, and how closely: :func:`locate`.

For a network of width n, master learning rate τ and keep probability q, :func:`locate`

1. computes the effective constants α_n = τ/q, β_n = (1 − q)/(nq), τ, the simplex point
   (log n, −log τ, −log q)/S and the theory's phase of the power law τ_m = m^(−b_τ),
   q_m = m^(−b_q) through that point (:func:`phase_diagram.theory.phases.classify`);
2. simulates dropout at width n (``repeats`` seeds) and every candidate limit with the plug-in
   constants of that width (:mod:`phase_diagram.finder.plugin`), from the same data and the same
   initial particles, over t ∈ [0, T] (T = K τ for K steps);
3. reports, per limit, the predictor error sup over [0, T] and at T and the W2 distance at T
   of the particle clouds, as geometric means with 95% intervals over the repeats, and applies
   :func:`phase_diagram.finder.comparison.compare_candidates`: the nearest limit, how clearly it
   wins, whether any limit is close (relative error ≤ 10% of the RMS of the targets), and the
   simplest limit within 25% of the nearest;
4. optionally (``ladder``) repeats the measurement at n/8, n/4, n/2 along the power law
   through the point, and fits the slope of the distance to the nearest limit against n.
"""
import dataclasses
import math

import numpy as np

from meanfield_dropout.validation import check_bool, check_int, check_positive
from meanfield_dropout.convergence import DEFAULT_DATA
from meanfield_dropout.data import data_label, load_dataset
from meanfield_dropout.runtime import tables
from meanfield_dropout.runtime.memory import announce_cost
from meanfield_dropout.runtime.runner import check_workers, run_unordered
from tqdm.auto import tqdm

from .comparison import DEFAULT_CLOSE, check_comparison_settings, compare_candidates
from .decision import DEFAULT_RATIO, paired_log_ratio, pooled_slope
from .plugin import (DEFAULT_BUDGET, candidate_limits, cell_seconds, effective_constants,
                     measure_cell)
from ..theory.phases import classify
from ..theory.scalings import power_law

__all__ = ["LocateResult", "LocateSettings", "horizon_report", "locate", "locate_horizons"]

MAX_WIDTH = 1 << 16
#: Most grid times of a run.
MAX_TIMES = 1001


def _power(b):
    """m^-b as text (1 when b = 0)."""
    return "1" if b == 0 else f"m^-{b:.4g}"


def _gmean_interval(values, level=0.95):
    """Geometric mean over the last axis with the 95% interval of the mean log (Student t)."""
    values = np.asarray(values, dtype=float)
    m, lo, hi = paired_log_ratio(values, np.ones_like(values), level)
    return math.exp(m) if math.isfinite(m) else math.inf, math.exp(lo), math.exp(hi)


@dataclasses.dataclass(frozen=True)
class LocateSettings:
    """How :func:`locate` measures a cell and decides, checked when built (a ``ValueError``
    naming the setting).

    Attributes
    ----------
    n_times : int
        Grid times in [0, T], 2 ≤ ``n_times`` ≤ :data:`MAX_TIMES`.
    limit_factor : int
        The limits run with N = limit_factor × n particles, 1 ≤ ``limit_factor`` ≤ 64, copies
        of dropout's initial ones (:func:`~phase_diagram.finder.plugin.measure_cell`).
    budget : float
        Estimated seconds allowed for one limit in one cell (:mod:`phase_diagram.finder.plugin`).
    ratio : float
        How much farther every other limit must be for the nearest to win clearly (> 1).
    close_threshold : float
        The largest relative error of a limit that describes dropout (> 0); ``ratio`` and
        ``close_threshold`` as in :func:`~phase_diagram.finder.comparison.compare_candidates`.
    """

    n_times: int = 9
    limit_factor: int = 4
    budget: float = DEFAULT_BUDGET
    ratio: float = DEFAULT_RATIO
    close_threshold: float = DEFAULT_CLOSE

    def __post_init__(self):
        ratio, _, close_threshold, _ = check_comparison_settings(
            ratio=self.ratio, close_threshold=self.close_threshold)
        checked = dict(n_times=check_int(self.n_times, "n_times", low=2, high=MAX_TIMES),
                       limit_factor=check_int(self.limit_factor, "limit_factor", low=1,
                                              high=64),
                       budget=check_positive(self.budget, "budget"), ratio=ratio,
                       close_threshold=close_threshold)
        for name, value in checked.items():
            object.__setattr__(self, name, value)


@dataclasses.dataclass(frozen=True)
class LocateResult:
    """What :func:`locate` measured for one network.

    Attributes
    ----------
    width, master_lr, keep_prob : int, float, float
    constants : dict
        :func:`~phase_diagram.finder.plugin.effective_constants`.
    theory : Regime
        The phase of the power law through the point.
    horizon, steps : float, int
        T and K = T/τ.
    times : ndarray (T,)
    limits : dict
        limit → plug-in constants, for the limits that ran.
    skipped : dict
        limit → reason it was left out.
    distances : dict
        limit → {"max", "final", "w2"}: arrays (R,) per repeat; NaN when a run diverged.
    curves : dict
        limit → predictor error (R, T) over time.
    scale : float
        RMS of the targets (distances are also reported relative to it).
    comparison : Comparison
        On the sup-over-time predictor error.
    diverged : list of str
    ladder : dict or None
        ``widths``, ``master_lr``, ``keep_prob``, ``distances`` {limit: (W, R)}, ``limit``
        (the one fitted), ``slope`` (slope, low, high).
    data : str
        The data it ran on (:func:`~meanfield_dropout.data.data_label`).
    seed : int
        The root seed.
    """

    width: int
    master_lr: float
    keep_prob: float
    constants: dict
    theory: object
    horizon: float
    steps: int
    times: np.ndarray
    limits: dict
    skipped: dict
    distances: dict
    curves: dict
    scale: float
    comparison: object
    diverged: list
    ladder: dict | None
    data: str
    seed: int

    __repr__ = tables.compact_repr

    def to_frame(self):
        """The distances as a tidy table (pandas, the ``table`` extra): one row per limit and
        repeat, at the width n and, with the ladder, per rung for the fitted limit.

        Columns ``width``, ``master_lr``, ``keep_prob``, ``horizon`` T, ``steps``, ``data``,
        ``seed``, ``limit``, ``repeat``, ``sup_predictor`` (sup over (0, T] of the predictor
        error), ``final_predictor`` and ``final_w2`` (at T; NaN on the ladder's rungs),
        ``relative`` (geometric mean over repeats / target RMS), ``nearest`` and
        ``describes`` (whether the limit is the nearest / the describing one at n).
        """
        cmp_ = self.comparison
        common = dict(horizon=self.horizon, steps=self.steps, data=self.data, seed=self.seed)
        rows = [dict(width=self.width, master_lr=self.master_lr, keep_prob=self.keep_prob,
                     **common, limit=name, repeat=r, sup_predictor=float(d["max"][r]),
                     final_predictor=float(d["final"][r]), final_w2=float(d["w2"][r]),
                     relative=cmp_.relative[name], nearest=name == cmp_.nearest,
                     describes=name == cmp_.describes)
                for name, d in self.distances.items() for r in range(len(d["max"]))]
        ladder = self.ladder or dict(widths=[])
        for i, n in enumerate(ladder["widths"][:-1]):
            rows += [dict(width=n, master_lr=ladder["master_lr"][i],
                          keep_prob=ladder["keep_prob"][i], **common, limit=ladder["limit"],
                          repeat=r, sup_predictor=float(value), final_predictor=math.nan,
                          final_w2=math.nan, relative=math.nan,
                          nearest=ladder["nearest"][i] == ladder["limit"], describes=False)
                     for r, value in enumerate(ladder["distances"][i])]
        return tables.frame(rows)

    def summary(self):
        """Multi-line report (used by the ``locate`` command)."""
        c, cmp_ = self.constants, self.comparison
        lines = [
            f"network: width n={self.width}, master lr tau={self.master_lr:g}, keep "
            f"q={self.keep_prob:g}; horizon T={self.horizon:g} ({self.steps} steps); data "
            f"{self.data}; seed {self.seed}",
            f"effective constants: alpha_n = tau/q = {c['alpha']:.4g}, beta_n = (1-q)/(nq) = "
            f"{c['beta']:.4g}, tau = {c['tau']:.4g}",
            "simplex point (log n, -log tau, -log q)/S = ("
            + ", ".join(f"{u:.4f}" for u in c["point"]) + ")",
            f"theory: the power law tau_m = {_power(c['b_tau'])}, q_m = {_power(c['b_keep'])} "
            f"through it is {self.theory.phase} ({self.theory.reason})",
            f"distance from dropout to each limit ({len(self.curves[next(iter(self.curves))])} "
            f"repeats; geometric mean [95% CI]; the target RMS is {self.scale:.3g}):",
            f"  {'limit':15s} {'sup_t predictor':>26s} {'predictor at T':>24s} "
            f"{'W2 at T':>24s}  ratio to nearest"]
        order = sorted(self.distances, key=lambda k: cmp_.relative[k])
        for name in order:
            cells = []
            for key in ("max", "final", "w2"):
                g, lo, hi = _gmean_interval(self.distances[name][key])
                cells.append(f"{g:.3g} [{lo:.3g}, {hi:.3g}]" if math.isfinite(g)
                             else "diverged")
            r = cmp_.ratios[name]
            lines.append(f"  {name:15s} {cells[0]:>26s} {cells[1]:>24s} {cells[2]:>24s}  "
                         f"{r[0]:.2f} [{r[1]:.2f}, {r[2]:.2f}]")
        lines += [f"  {name:15s} not run: {why}" for name, why in self.skipped.items()]
        if self.diverged:
            lines.append(f"diverged runs: {len(self.diverged)} ({self.diverged[0]})")
        if cmp_.nearest is None:
            lines.append("nearest limit: none (every run diverged)")
        else:
            how = ("it is the only limit run, so it was compared with no other"
                   if cmp_.runner_up is None else
                   "it wins clearly (every other limit is at least "
                   f"{cmp_.settings['ratio']:g}x farther at 95%)" if cmp_.clear else
                   f"it wins not clearly (runner-up {cmp_.runner_up} at {cmp_.margin:.2f}x, "
                   f"95% CI [{cmp_.margin_low:.2f}, {cmp_.margin_high:.2f}])")
            lines.append(f"nearest limit: {cmp_.nearest}, relative error "
                         f"{cmp_.relative[cmp_.nearest]:.3g}; {how}")
            if not cmp_.close:
                lines.append(f"no limit is close: the nearest one's relative error is above "
                             f"{cmp_.settings['close_threshold']:g}")
            else:
                lines.append(f"described by: {cmp_.describes} (the simplest limit within "
                             f"{cmp_.settings['describe_ratio']:g}x of the nearest)")
            lines.append(f"this answer holds for the horizon T = {self.horizon:g} "
                         f"({self.steps} steps): over another horizon another limit can be "
                         "the nearest (ask several: --steps K1,K2 or --horizon T1,T2)")
        if self.ladder is not None:
            s, lo, hi = self.ladder["slope"]
            trend = ("still falling" if hi < 0 else "not falling" if lo > -0.05 else
                     "not clearly falling")
            lines.append(f"width ladder {', '.join(map(str, self.ladder['widths']))}: distance "
                         f"to {self.ladder['limit']} ~ n^{s:+.2f} (95% CI [{lo:+.2f}, "
                         f"{hi:+.2f}]): {trend}")
            lines.append("nearest limit along the ladder: " + ", ".join(
                f"n={n}: {name}" for n, name in zip(self.ladder["widths"],
                                                   self.ladder["nearest"])))
        return "\n".join(lines)


def _candidates(width, master_lr, keep_prob, *, horizon, data, budget, limit_factor, **_):
    """(limits that run, skipped) at one width (ValueError if none fits the budget)."""
    limits, skipped = candidate_limits(width, master_lr, keep_prob, horizon, *data[0].shape,
                                       budget=budget, limit_factor=limit_factor)
    if not limits:
        raise ValueError(f"no limit can be simulated at width {width} within the budget")
    return limits, skipped


def _measure(width, master_lr, keep_prob, *, horizon, data, repeats, seed, workers, budget,
             n_times, limit_factor, bar):
    """Run the repeats of one width; returns (limits, skipped, per-repeat cell dicts)."""
    limits, skipped = _candidates(width, master_lr, keep_prob, horizon=horizon, data=data,
                                  budget=budget, limit_factor=limit_factor)
    tasks = [(width, master_lr, keep_prob, limits, horizon,
              np.random.SeedSequence(seed, spawn_key=(width, r)), data, n_times, 64,
              limit_factor)
             for r in range(repeats)]
    cells = [None] * repeats
    for index, cell in run_unordered(measure_cell, tasks, workers):
        cells[index] = cell
        bar.update()
    return limits, skipped, cells


def _ladder_points(width, constants):
    """(n, τ_n, q_n) at n/8, n/4, n/2 along the power law through the point."""
    return [(n, n ** -constants["b_tau"], min(1.0, n ** -constants["b_keep"]))
            for n in (width // 8, width // 4, width // 2)]


def _horizon_steps(tau, steps=None, horizon=None):
    """(T, K): the horizon and the dropout steps of ``steps`` K (T = K τ) or of ``horizon`` T
    (K = T/τ rounded, default T = 2), checked: 1 ≤ K ≤ 10^7."""
    if steps is not None and horizon is not None:
        raise ValueError("give steps or horizon, not both")
    if steps is not None:
        steps = check_int(steps, "steps", low=1, high=10 ** 7)
        return steps * tau, steps
    horizon = 2.0 if horizon is None else check_positive(horizon, "horizon")
    steps = max(1, round(horizon / tau))
    if steps > 10 ** 7:
        raise ValueError(f"horizon {horizon:g} needs {steps} steps of tau={tau:g} "
                         f"(at most 10**7)")
    return horizon, steps


def locate(width, master_lr, keep_prob, *, data=None, steps=None, horizon=None, repeats=3,
           seed=0, ladder=False, settings=LocateSettings(), workers=None, progress=True):
    """Which limit dynamics describes dropout at width n, learning rate τ, keep q, over the
    horizon [0, T].

    The answer holds for that horizon: over a longer one another limit can be the nearest
    (e.g. the Bernoulli jump over 10 steps, the WGF over 100); :func:`locate_horizons` asks
    several. A run estimated above 30 s prints its estimate first
    (:func:`~meanfield_dropout.runtime.memory.announce_cost`, from the cost model of
    :mod:`phase_diagram.finder.plugin`).

    Every argument is checked before anything runs (a ``ValueError`` naming it; data as in
    :func:`~meanfield_dropout.data.load_dataset`, with one float64 copy per worker process).

    Parameters
    ----------
    width : int
        n, 16 ≤ n ≤ 65536.
    master_lr : float
        τ ∈ (0, 1].
    keep_prob : float
        q ∈ (0, 1].
    data : None, str, path, Dataset or (inputs, targets)
        A named data set (:data:`~meanfield_dropout.data.DATASETS`; default ``"toy"``, the
        scans' problem), an ``.npz`` file, a Dataset or a pair
        (:func:`~meanfield_dropout.data.load_dataset`).
    steps : int, optional
        K dropout steps; the horizon is T = K τ. Give ``steps`` or ``horizon`` (default
        T = 2).
    horizon : float, optional
    repeats : int
        Seeds (≥ 2 for intervals).
    seed : int
    ladder : bool
        Also measure at n/8, n/4, n/2 along the power law through the point.
    settings : LocateSettings
        The grid, the limits' particles and time budget, and the decision's thresholds.
    workers : int, optional
        Processes (default: one per core); the numbers do not depend on it.
    progress : bool
        A tqdm bar over the cells (repeats × widths).

    Returns
    -------
    LocateResult
    """
    width = check_int(width, "width", low=16, high=MAX_WIDTH)
    constants = effective_constants(width, master_lr, keep_prob)
    tau, q = constants["tau"], keep_prob
    horizon, steps = _horizon_steps(tau, steps, horizon)
    repeats = check_int(repeats, "repeats", low=1, high=100)
    seed = check_int(seed, "seed", low=0)
    workers = check_workers(workers)
    if not isinstance(settings, LocateSettings):
        raise ValueError(f"settings must be a LocateSettings, got {type(settings).__name__}")
    ladder, progress = check_bool(ladder, "ladder"), check_bool(progress, "progress")
    data = DEFAULT_DATA if data is None else data
    dataset = load_dataset(data, copies=1 + min(workers, repeats))
    label = data_label(data)
    data = dataset.inputs, dataset.targets
    scale = float(np.sqrt(np.mean(data[1] ** 2)))
    theory = classify(power_law(1.0, constants["b_tau"], 1.0, constants["b_keep"]))
    common = dict(horizon=horizon, data=data, repeats=repeats, seed=seed, workers=workers,
                  budget=settings.budget, n_times=settings.n_times,
                  limit_factor=settings.limit_factor)
    points = [(width, tau, q)] + (_ladder_points(width, constants) if ladder else [])
    seconds = repeats * sum(
        cell_seconds(n, t, k, horizon, data[0].shape, _candidates(n, t, k, **common)[0],
                     common["limit_factor"], n_times=common["n_times"])
        for n, t, k in points)
    announce_cost(seconds, f"locate at width {width} over T = {horizon:g} ({steps} steps), "
                           f"{repeats} repeats" + (" and the width ladder" if ladder else ""),
                  min(workers, repeats))
    with tqdm(total=repeats * len(points), desc="locate", unit="cell",
              disable=not progress) as bar:
        limits, skipped, cells = _measure(width, tau, q, bar=bar, **common)
        distances = {name: dict(max=_sup(cells, name),
                                final=np.array([c[name]["predictor"][-1] for c in cells]),
                                w2=np.array([c[name]["w2"][-1] for c in cells]))
                     for name in limits}
        curves = {name: np.array([c[name]["predictor"] for c in cells]) for name in limits}
        comparison = compare_candidates({k: v["max"] for k, v in distances.items()},
                                        scale=scale, ratio=settings.ratio,
                                        close_threshold=settings.close_threshold)
        diverged = [c["diverged"] for c in cells if c["diverged"]]
        rung = None
        if ladder and comparison.nearest is not None:
            rung = _ladder(points, constants, comparison, distances, dict(common, bar=bar),
                           scale)
    return LocateResult(width, tau, float(q), constants, theory, float(horizon), int(steps),
                        cells[0]["times"], limits, skipped, distances, curves, scale,
                        comparison, diverged, rung, label, seed)


def _sup(cells, name):
    """Per repeat, the sup over t > 0 of the predictor error to ``name`` (NaN if diverged or
    not run)."""
    return np.array([np.nanmax(c[name]["predictor"][1:])
                     if name in c and c["diverged"] is None else np.nan for c in cells])


def _ladder(points, constants, comparison, distances, common, scale):
    """Distances to the nearest limit at n/8, n/4, n/2 (and n) along the power law through
    the point, and the nearest limit at each of these widths."""
    (width, *_), rungs = points[0], points[1:]
    nearest = comparison.nearest
    rows, taus, keeps, nearest_at = [], [], [], []
    for n, tau_n, keep_n in rungs:
        limits, _, cells = _measure(n, tau_n, keep_n, **common)
        taus.append(tau_n)
        keeps.append(keep_n)
        rows.append(_sup(cells, nearest))
        nearest_at.append(compare_candidates({k: _sup(cells, k) for k in limits},
                                             scale=scale, **{
                                                 k: comparison.settings[k] for k in (
                                                     "ratio", "close_threshold")}).nearest)
    rows.append(distances[nearest]["max"])
    all_widths = [n for n, *_ in rungs] + [width]
    table = np.vstack(rows)
    return dict(widths=all_widths, master_lr=taus + [constants["tau"]],
                keep_prob=keeps + [float(math.exp(-constants["b_keep"] * math.log(width)))],
                limit=nearest, distances=table, nearest=nearest_at + [nearest],
                slope=pooled_slope(all_widths, table))



def locate_horizons(width, master_lr, keep_prob, *, steps=None, horizons=None, **options):
    """:func:`locate` over several horizons, to see how the answer moves with T.

    Every horizon is checked before the first one runs (a ``ValueError`` naming it).

    Parameters
    ----------
    width, master_lr, keep_prob
        As in :func:`locate`.
    steps, horizons : sequence, optional
        The horizons as step counts K (T = K τ) or as times T; give one of them.
    **options
        Passed to :func:`locate`.

    Returns
    -------
    list of LocateResult
        One per horizon, in the order asked (:func:`horizon_report` compares them).
    """
    if (steps is None) == (horizons is None):
        raise ValueError("give steps or horizons (a sequence), not both")
    keyword, values = ("steps", steps) if steps is not None else ("horizon", horizons)
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{keyword} must be a sequence, got {values!r}")
    values = list(values)
    if not values:
        raise ValueError(f"{keyword} must hold at least one value")
    tau = effective_constants(check_int(width, "width", low=16, high=MAX_WIDTH), master_lr,
                              keep_prob)["tau"]
    for value in values:        # every horizon is checked before the first one runs
        _horizon_steps(tau, **{keyword: value})
    return [locate(width, master_lr, keep_prob, **{keyword: value}, **options)
            for value in values]


def horizon_report(located):
    """Lines comparing :func:`locate` results of one network over several horizons: the
    nearest and the describing limit at each T, and whether the answer moved."""
    lines = [f"how the answer moves with the horizon (width n={located[0].width}, tau="
             f"{located[0].master_lr:g}, q={located[0].keep_prob:g}):",
             f"  {'T':>10s} {'steps':>8s}  {'nearest':15s} {'described by':15s} clear"]
    for r in located:
        c = r.comparison
        lines.append(f"  {r.horizon:10.4g} {r.steps:8d}  {str(c.nearest):15s} "
                     f"{c.describes:15s} {'yes' if c.clear else 'no'}")
    nearest = [r.comparison.nearest for r in located]
    if len(set(nearest)) == 1:
        lines.append(f"the nearest limit is {nearest[0]} at every horizon asked")
    else:
        lines.append("the nearest limit depends on the horizon: " + " -> ".join(
            f"{name} (T={r.horizon:g})" for name, r in zip(nearest, located)))
    return lines
