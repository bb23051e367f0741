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
   :func:`phase_diagram.finder.decision.compare_candidates`: the nearest limit, how clearly it wins,
   whether any limit is close (relative error ≤ 10% of the RMS of the targets), and the
   simplest limit within 25% of the nearest;
4. optionally (``ladder``) repeats the measurement at n/8, n/4, n/2 along the power law
   through the point, and fits the slope of the distance to the nearest limit against n.
"""
import dataclasses
import math

import numpy as np

from meanfield_dropout.validation import check_int, check_positive
from meanfield_dropout.convergence import DEFAULT_DATA
from meanfield_dropout.data import data_label, load_dataset
from meanfield_dropout.runtime.runner import check_workers, run_unordered

from .decision import (DEFAULT_CLOSE, DEFAULT_RATIO, compare_candidates, paired_log_ratio,
                       pooled_slope)
from .plugin import DEFAULT_BUDGET, candidate_limits, effective_constants, measure_cell
from ..theory.phases import classify
from ..theory.scalings import power_law

__all__ = ["LocateResult", "locate"]

MAX_WIDTH = 1 << 16


def _power(b):
    """m^-b as text (1 when b = 0)."""
    return "1" if b == 0 else f"m^-{b:.4g}"


def _gmean_interval(values, level=0.95):
    """Geometric mean over the last axis with the 95% interval of the mean log (Student t)."""
    values = np.asarray(values, dtype=float)
    m, lo, hi = paired_log_ratio(values, np.ones_like(values), level)
    return math.exp(m) if math.isfinite(m) else math.inf, math.exp(lo), math.exp(hi)


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
        if self.ladder is not None:
            s, lo, hi = self.ladder["slope"]
            trend = ("still falling" if hi < 0 else "not falling" if lo > -0.05 else
                     "not clearly falling")
            lines.append(f"width ladder {', '.join(map(str, self.ladder['widths']))}: distance "
                         f"to {self.ladder['limit']} ~ n^{s:+.2f} (95% CI [{lo:+.2f}, "
                         f"{hi:+.2f}]): {trend}")
        return "\n".join(lines)


def _measure(width, master_lr, keep_prob, *, horizon, data, repeats, seed, workers, budget,
             n_times, limit_factor):
    """Run the repeats of one width; returns (limits, skipped, per-repeat cell dicts)."""
    inputs, targets = data
    limits, skipped = candidate_limits(width, master_lr, keep_prob, horizon, *inputs.shape,
                                       budget=budget, limit_factor=limit_factor)
    if not limits:
        raise ValueError(f"no limit can be simulated at width {width} within the budget")
    tasks = [(width, master_lr, keep_prob, limits, horizon,
              np.random.SeedSequence(seed, spawn_key=(width, r)), data, n_times, 64,
              limit_factor)
             for r in range(repeats)]
    cells = [None] * repeats
    for index, cell in run_unordered(measure_cell, tasks, workers):
        cells[index] = cell
    return limits, skipped, cells


def locate(width, master_lr, keep_prob, *, data=None, steps=None, horizon=None, repeats=3,
           seed=0, ladder=False, workers=None, ratio=DEFAULT_RATIO,
           close_threshold=DEFAULT_CLOSE, budget=DEFAULT_BUDGET, n_times=9, limit_factor=4):
    """Which limit dynamics describes dropout at width n, learning rate τ, keep q.

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
    workers : int, optional
        Processes (default: one per core); the numbers do not depend on it.
    ratio, close_threshold : float
        See :mod:`phase_diagram.finder.decision`.
    budget : float
        Estimated seconds allowed for one limit in one cell (:mod:`phase_diagram.finder.plugin`).
    limit_factor : int
        The limits run with N = limit_factor × n particles, copies of dropout's initial ones
        (:func:`~phase_diagram.finder.plugin.measure_cell`).
    n_times : int
        Grid times in [0, T].

    Returns
    -------
    LocateResult
    """
    width = check_int(width, "width", low=16, high=MAX_WIDTH)
    constants = effective_constants(width, master_lr, keep_prob)
    tau, q = constants["tau"], keep_prob
    if steps is not None and horizon is not None:
        raise ValueError("give steps or horizon, not both")
    if steps is not None:
        steps = check_int(steps, "steps", low=1, high=10 ** 7)
        horizon = steps * tau
    else:
        horizon = 2.0 if horizon is None else check_positive(horizon, "horizon")
        steps = max(1, round(horizon / tau))
        if steps > 10 ** 7:
            raise ValueError(f"horizon {horizon:g} needs {steps} steps of tau={tau:g} "
                             f"(at most 10**7)")
    repeats = check_int(repeats, "repeats", low=1, high=100)
    seed = check_int(seed, "seed", low=0)
    workers = check_workers(workers)
    data = DEFAULT_DATA if data is None else data
    label = data_label(data)
    dataset = load_dataset(data)
    data = dataset.inputs, dataset.targets
    scale = float(np.sqrt(np.mean(data[1] ** 2)))
    theory = classify(power_law(1.0, constants["b_tau"], 1.0, constants["b_keep"]))
    common = dict(horizon=horizon, data=data, repeats=repeats, seed=seed, workers=workers,
                  budget=budget, n_times=n_times,
                  limit_factor=check_int(limit_factor, "limit_factor", low=1, high=64))
    limits, skipped, cells = _measure(width, tau, q, **common)
    distances = {name: dict(max=np.array([np.nanmax(c[name]["predictor"][1:])
                                          if c["diverged"] is None else np.nan for c in cells]),
                            final=np.array([c[name]["predictor"][-1] for c in cells]),
                            w2=np.array([c[name]["w2"][-1] for c in cells]))
                 for name in limits}
    curves = {name: np.array([c[name]["predictor"] for c in cells]) for name in limits}
    comparison = compare_candidates({k: v["max"] for k, v in distances.items()}, scale=scale,
                                    ratio=ratio, close_threshold=close_threshold)
    diverged = [c["diverged"] for c in cells if c["diverged"]]
    rung = None
    if ladder and comparison.nearest is not None:
        rung = _ladder(width, constants, comparison.nearest, distances, common)
    return LocateResult(width, tau, float(q), constants, theory, float(horizon), int(steps),
                        cells[0]["times"], limits, skipped, distances, curves, scale,
                        comparison, diverged, rung, label, seed)


def _ladder(width, constants, nearest, distances, common):
    """Distances to ``nearest`` at n/8, n/4, n/2 (and n) along the power law through the point."""
    widths = [width // 8, width // 4, width // 2]
    rows, taus, keeps = [], [], []
    for n in widths:
        tau_n = n ** -constants["b_tau"]
        keep_n = min(1.0, n ** -constants["b_keep"])
        limits, _, cells = _measure(n, tau_n, keep_n, **common)
        taus.append(tau_n)
        keeps.append(keep_n)
        rows.append(np.array([np.nanmax(c[nearest]["predictor"][1:])
                              if nearest in limits and c["diverged"] is None else np.nan
                              for c in cells]))
    rows.append(distances[nearest]["max"])
    all_widths = widths + [width]
    table = np.vstack(rows)
    return dict(widths=all_widths, master_lr=taus + [constants["tau"]],
                keep_prob=keeps + [float(math.exp(-constants["b_keep"] * math.log(width)))],
                limit=nearest, distances=table,
                slope=pooled_slope(all_widths, table))

