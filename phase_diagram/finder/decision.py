"""Stated statistical rules that name a limit from measured distances, or say why they cannot.

Pure functions on arrays: no simulation, no files. Distances are positive numbers, one per
cell (e.g. the sup over [0, T] of the predictor error between dropout and a candidate limit);
a non-finite entry (NaN or ±inf) marks a diverged cell, which counts as "not converging to
that limit", never as a distance.

Asymptotic rule (:func:`decide_asymptotic`, scans over widths). With the ``window`` largest
widths, for every candidate c:

* c is *diverged* if any of its cells in the window diverged; it can never be chosen;
* its *slope* is the least-squares slope of log d against log n over all its cells in the
  window (every cell is an independent seed, so each is one observation), with the 95%
  Student-t interval (N − 2 degrees of freedom); c is *clearly falling* when the upper end of
  the interval is below −``slope_threshold``;
* at the largest width, the *best* candidate has the smallest mean log distance; every other
  candidate c is *clearly above* it when the 95% interval of log(d_c / d_best) at the largest
  width lies above log ``ratio`` (default: c is at least twice as far). The log ratio there is
  the value at the largest width of a line in log n fitted to the paired log ratios of the
  window's cells (same width and repeat: the same dropout run), N − 2 degrees of freedom.

The phase is the best candidate when it is clearly falling and every other candidate is
clearly above it or diverged. The answer is ``degenerate`` when every candidate is diverged or
clearly growing (slope interval above 0). Otherwise it is ``undetermined`` with the reasons.
The factor 2 is there because a deterministic limit (the flows) and a stochastic one (the jump
limits) differ in their own noise: two independent noisy systems are √2 farther apart than a
noisy system and a deterministic one, so a ratio below √2 can be noise alone. A ratio
clearly above 1 and clearly growing with n is not enough either: while the best candidate's
distance is still dominated by dropout's fluctuation (falling like n^(−1/2)) and the others'
by their bias, the ratio grows whether or not the best is the limit. The scan of
``examples/phase_scan.toml`` has such a case: at the degenerate scaling τ_n = 0.25,
q_n = 1/log n the Poisson jump's distance falls (slope −0.47 up to n = 1024) and the ratios of
the Bernoulli jump (1.38) and the WGF (1.58) grow like n^0.28 and n^0.42.

Frozen clause (``frozen``: which cells' dropout run never moved). The answer is also
``degenerate`` when dropout did not move in any cell of the window (no neuron was kept in the
whole run, so the network is exactly its initial one) and every candidate is diverged or
clearly not falling (slope interval above −``slope_threshold``). Each candidate limit moves
away from the initial measure by a width-independent amount, while a network that is frozen
with a probability bounded away from 0 cannot converge to a measure that moves: dropout
converges to none of them. It decides the scalings where the expected number of kept
neurons over the horizon, n q_n T/τ_n, tends to 0 (u_q > u_n + u_τ, inside the degenerate
region u_q > min(u_n, u_τ)); unlike the not-falling option below it cannot mistake a limit
that converges slowly for none, since a slowly converging network moves.

Exploding clause (``exploded``: which cells' dropout run left its divergence bounds). The
answer is also ``degenerate`` when dropout left its bounds (``divergence_factor`` × its
initial scales, or non-finite) in at least one repeat at every width of the window, and in
no repeat at some smaller width: the explosions appear as n grows and do not go away, the
signature of a kept neuron's step τ_n/q_n → ∞ or of an output amplified by 1/(n q_n) → ∞, so
no limit on bounded measures describes dropout (every candidate's distance there is
infinite). A step that is only too large at small widths (τ_n times the loss's sharpness
above 2, with τ_n → 0) explodes at the small widths and not at the large ones, the opposite
order; a scaling that explodes at every width it ran stays diverged (no decision), since the
two cannot be told apart.

Sequential repeats. An ``undetermined`` answer whose point estimates meet the rule (the
best candidate's slope below −``slope_threshold`` and every close competitor's ratio above
``ratio``, or every slope above 0) is marked ``intervals_block``: the intervals, not the
estimates, block the decision, and more repeats at the same widths narrow them (like
1/√R); a sequential scan gives such a scaling repeats before width
(:func:`phase_diagram.scan.sequential.run_sequential`). The rule itself is unchanged: each
look at the data is a full decision at the 95% level, and the looks are few (repeats
doubling up to a cap).

Not-falling option (``flat_slope``, off by default). A candidate is *clearly not falling* when
its slope interval lies above −``flat_slope``; with the option, the answer is also
``degenerate`` when every candidate is diverged, clearly growing or clearly not falling
(``flat_slope = slope_threshold`` is the symmetric rule: not falling at the rate the rule
demands before it names a limit). It decides the degenerate scalings whose distances stay
O(1) (u_q > min(u_n, u_τ): each update a kick τ_n/q_n → ∞ kept T q_n/τ_n → 0 times), which
the default rule leaves undetermined. It is an option, not the rule, because it is safe only
when every non-degenerate scaling's true limit falls at least like n^(−flat_slope) over the
window, and that fails: the convergence rates are not established (the theory expects terms in
n^(−1/2), τ_n/q_n, 1/(n q_n) and τ_n), and the terms expected are slower than n^(−0.15) at
points of the default grid, e.g. (τ_n/q_n)^(1/2) = n^(−1/14) at grid(7,1,0) (WGF) and n^(−1/12)
on the penalized segment at b = 7/6, (n q_n)^(−1/2) = n^(−1/8) on the Poisson segment at b = ¾;
a scaling with a logarithm (the Poisson scaling τ_n = 0.25/log n, q_n = 0.5/log n of the
scans' example) converges slower than every power. Such a limit, measured long enough, has a
tight interval above −0.15 while its competitors stay flat, and the symmetric rule would call
it degenerate.

The single-width rule of ``locate`` and the phase maps is in :mod:`.comparison`.
"""
import dataclasses
import math

import numpy as np

from meanfield_dropout.stats import line_fit, mean_interval, t_quantile

__all__ = ["DEFAULT_RATIO", "DEFAULT_WINDOW", "DEFAULT_SLOPE_THRESHOLD", "UNDETERMINED",
           "DEGENERATE", "CandidateFit", "AsymptoticDecision", "decide_asymptotic",
           "paired_log_ratio", "log_ratio_at", "pooled_slope", "not_falling_note", "explodes"]

DEFAULT_RATIO = 2.0
DEFAULT_WINDOW = 4
DEFAULT_SLOPE_THRESHOLD = 0.15
UNDETERMINED = "undetermined"
DEGENERATE = "degenerate"


def pooled_slope(widths, values, level=0.95):
    """Least-squares slope of log ``values`` against log ``widths`` over all finite cells.

    Parameters
    ----------
    widths : array_like, shape (W,)
    values : array_like, shape (W, R)
        Positive distances; non-finite cells are left out.
    level : float
        Confidence level of the Student-t interval.

    Returns
    -------
    slope, low, high : float
        The slope and its interval (±inf with fewer than three cells or one width).
    """
    values = np.asarray(values, dtype=float)
    x = np.repeat(np.log(np.asarray(widths, dtype=float))[:, None], values.shape[1], axis=1)
    keep = np.isfinite(values) & (values > 0)
    x, y = x[keep], np.log(values[keep])
    if x.size < 2 or np.ptp(x) == 0:
        return math.nan, -math.inf, math.inf
    slope, error, _, _ = (float(v) for v in line_fit(x, y))
    if x.size < 3:
        return slope, -math.inf, math.inf
    half = t_quantile(x.size - 2, level) * error
    return slope, slope - half, slope + half


def paired_log_ratio(other, best, level=0.95):
    """Mean of log(other_r / best_r) over the repeats where both are finite, with interval.

    Returns
    -------
    mean, low, high : float
        ±inf bounds with fewer than two pairs.
    """
    other, best = np.asarray(other, dtype=float), np.asarray(best, dtype=float)
    keep = np.isfinite(other) & np.isfinite(best) & (other > 0) & (best > 0)
    diff = np.log(other[keep]) - np.log(best[keep])
    if diff.size == 0:
        return math.nan, -math.inf, math.inf
    mean, half = (float(v) for v in mean_interval(diff, level))
    if diff.size < 2:
        return mean, -math.inf, math.inf
    return mean, mean - half, mean + half


def log_ratio_at(widths, other, best, at, level=0.95):
    """Log ratio log(other/best) at width ``at``, fitted over paired cells.

    The paired log ratios of the cells (same width and repeat) are fitted by a line in log n
    (a constant when there is one width); the value of the line at ``at`` and its Student-t
    interval are returned (±inf bounds without residual degrees of freedom).

    Parameters
    ----------
    widths : array_like, shape (W,)
    other, best : array_like, shape (W, R)
    at : float

    Returns
    -------
    mean, low, high : float
    """
    other, best = np.asarray(other, dtype=float), np.asarray(best, dtype=float)
    x = np.repeat(np.log(np.asarray(widths, dtype=float))[:, None] - math.log(at),
                  other.shape[1], axis=1)
    keep = np.isfinite(other) & np.isfinite(best) & (other > 0) & (best > 0)
    x, y = x[keep], np.log(other[keep]) - np.log(best[keep])
    if y.size == 0:
        return math.nan, -math.inf, math.inf
    if np.ptp(x) == 0:
        return paired_log_ratio(other[keep], best[keep], level)
    _, _, value, error = (float(v) for v in line_fit(x, y))
    if y.size < 3:
        return value, -math.inf, math.inf
    half = t_quantile(y.size - 2, level) * error
    return value, value - half, value + half


def not_falling_note(flat_slope):
    """What the not-falling option adds to the rule, in the words of reports and figures (""
    when ``flat_slope`` is None: off)."""
    return "" if flat_slope is None else (
        f"degenerate also when every limit is clearly not falling (slope interval above "
        f"{-flat_slope:+.2f})")


@dataclasses.dataclass(frozen=True)
class CandidateFit:
    """What the asymptotic rule measured for one candidate limit.

    Attributes
    ----------
    diverged : bool
        A cell of the window diverged.
    slope, slope_low, slope_high : float
        Pooled log–log slope over the window and its interval.
    ratio, ratio_low, ratio_high : float
        exp of the paired mean log ratio to the best candidate at the largest width, with its
        interval (1 for the best itself).
    """

    diverged: bool
    slope: float
    slope_low: float
    slope_high: float
    ratio: float
    ratio_low: float
    ratio_high: float


@dataclasses.dataclass(frozen=True)
class AsymptoticDecision:
    """The outcome of :func:`decide_asymptotic`.

    Attributes
    ----------
    phase : str
        A candidate's name, ``"degenerate"`` or ``"undetermined"``.
    reason : str
        One line: why this answer.
    best : str or None
        The candidate with the smallest distance at the largest width.
    width : int
        The largest width used.
    fits : dict
        candidate → :class:`CandidateFit`.
    settings : dict
        ``window``, ``ratio``, ``slope_threshold``, ``level``.
    intervals_block : bool
        ``undetermined``, but the point estimates (every interval shrunk to its centre) meet
        the rule: the intervals, not the estimates, block the decision, so more repeats at the
        same widths may decide it (sequential repeats, module docstring).
    """

    phase: str
    reason: str
    best: str | None
    width: int
    fits: dict
    settings: dict
    intervals_block: bool = False

    @property
    def decided(self):
        """True unless the answer is ``undetermined``."""
        return self.phase != UNDETERMINED


def _check(widths, distances):
    widths = np.asarray(widths, dtype=float)
    if widths.ndim != 1 or widths.size < 2 or np.any(np.diff(widths) <= 0) or widths[0] <= 0:
        raise ValueError("widths must be at least two increasing positive numbers")
    if not distances:
        raise ValueError("distances must hold at least one candidate")
    out = {}
    for name, values in distances.items():
        values = np.asarray(values, dtype=float)
        if values.ndim != 2 or values.shape[0] != widths.size:
            raise ValueError(f"distances[{name!r}] must have shape (widths, repeats) = "
                             f"({widths.size}, R), got {values.shape}")
        out[name] = np.where(values > 0, values, np.where(values == 0, np.finfo(float).tiny,
                                                          np.nan))
        out[name][~np.isfinite(values)] = np.nan
    return widths, out


def explodes(exploded, window=DEFAULT_WINDOW):
    """The exploding clause (module docstring): dropout left its bounds in at least one repeat
    at each of the ``window`` largest widths of ``exploded`` (bool, shape (W, R)) and in none
    at some smaller width."""
    per_width = np.asarray(exploded, dtype=bool).any(axis=1)
    start = max(per_width.size - int(window), 0)
    return bool(per_width[start:].all() and not per_width[:start].all())


def _cell_flags(flags, name, shape):
    """One flag per cell (widths, repeats) as a bool array, checked."""
    flags = np.asarray(flags, dtype=bool)
    if flags.shape != shape:
        raise ValueError(f"{name} must have shape (widths, repeats) = {shape}, "
                         f"got {flags.shape}")
    return flags


def decide_asymptotic(widths, distances, *, window=DEFAULT_WINDOW, ratio=DEFAULT_RATIO,
                      slope_threshold=DEFAULT_SLOPE_THRESHOLD, level=0.95, flat_slope=None,
                      frozen=None, exploded=None):
    """Name the limit whose distance is clearly below the others and clearly falling with n.

    Parameters
    ----------
    widths : array_like, shape (W,)
        Increasing widths, W ≥ 2.
    distances : dict
        candidate → array (W, R) of distances per width and repeat; non-finite = diverged.
    window : int
        Number of largest widths used (≥ 2).
    ratio : float
        Factor (> 1) by which every other candidate must be clearly farther.
    slope_threshold : float
        "Clearly falling": the slope's interval lies below −slope_threshold.
    level : float
        Confidence level of every interval.
    flat_slope : float, optional
        The *not-falling* option of the module docstring: a candidate whose slope interval
        lies above −flat_slope is *clearly not falling* and counts towards ``degenerate``
        (``flat_slope = slope_threshold`` is the symmetric rule). None (default): off.
    frozen : array_like of bool, shape (W, R), optional
        The cells whose dropout run never moved (the frozen clause of the module docstring).
        None (default): unknown, the clause does not apply.
    exploded : array_like of bool, shape (W, R), optional
        The cells whose dropout run left its divergence bounds (the exploding clause of the
        module docstring; their distances are non-finite). None (default): the clause does
        not apply.

    Returns
    -------
    AsymptoticDecision
        The rule is stated in the module docstring; it depends on the distances only (not on
        the order of candidates, nor on how the cells were computed).
    """
    widths, distances = _check(widths, distances)
    if int(window) < 2 or ratio <= 1 or slope_threshold < 0 or not 0 < level < 1:
        raise ValueError("need window >= 2, ratio > 1, slope_threshold >= 0, 0 < level < 1")
    if flat_slope is not None and not flat_slope >= 0:
        raise ValueError(f"flat_slope must be None or a number >= 0, got {flat_slope!r}")
    top = slice(max(widths.size - int(window), 0), None)
    names = sorted(distances)
    frozen, exploded = (None if a is None else _cell_flags(a, name, distances[names[0]].shape)
                        for a, name in ((frozen, "frozen"), (exploded, "exploded")))
    diverged = {c: bool(np.isnan(distances[c][top]).any()) for c in names}
    slopes = {c: pooled_slope(widths[top], distances[c][top], level) for c in names}
    last = {c: distances[c][-1] for c in names}
    alive = [c for c in names if not diverged[c]]
    best = min(alive, key=lambda c: (float(np.mean(np.log(last[c]))), c)) if alive else None
    fits, above = {}, {}
    for c in names:
        r = (0.0, 0.0, 0.0) if c == best else (
            log_ratio_at(widths[top], distances[c][top], distances[best][top], widths[-1],
                         level) if best else (math.nan,) * 3)
        fits[c] = CandidateFit(diverged[c], *slopes[c], *(math.exp(v) for v in r))
        above[c] = diverged[c] or (c != best and best is not None
                                   and r[1] > math.log(ratio))
    settings = dict(window=int(window), ratio=float(ratio),
                    slope_threshold=float(slope_threshold), level=float(level),
                    flat_slope=None if flat_slope is None else float(flat_slope))
    width = int(widths[-1])

    def result(phase, reason, intervals_block=False):
        return AsymptoticDecision(phase, reason, best, width, fits, settings, intervals_block)

    if exploded is not None and explodes(exploded, window):
        return result(DEGENERATE, f"dropout left its bounds in {int(exploded[top].sum())} of "
                                  f"{exploded[top].size} cells, at every width "
                                  f"n = {int(widths[top][0])}..{width}, and in none at "
                                  f"n = {int(widths[~exploded.any(axis=1)][-1])}")
    if best is not None:
        fit = fits[best]
        falling = fit.slope_high < -slope_threshold
        close = [c for c in names if c != best and not above[c]]
        if falling and not close:
            return result(best, f"{best} is clearly falling (slope {fit.slope:+.2f}, 95% CI "
                                f"[{fit.slope_low:+.2f}, {fit.slope_high:+.2f}]) and every "
                                f"other limit is at least {ratio:g}x farther at n={width}")
    growing = [c for c in names if diverged[c] or fits[c].slope_low > 0]
    if len(growing) == len(names):
        return result(DEGENERATE, f"every limit diverged or moves away as n grows "
                                  f"(up to n={width})")
    if frozen is not None:
        if frozen[top].all() and all(diverged[c] or fits[c].slope_low > -slope_threshold
                                     for c in names):
            return result(DEGENERATE, f"dropout never moved in any cell (no neuron kept) at "
                                      f"n = {int(widths[top][0])}..{width} while every limit "
                                      f"moves and is clearly not falling (slope interval "
                                      f"above {-slope_threshold:+.2f})")
    if flat_slope is not None and all(diverged[c] or fits[c].slope_low > -flat_slope
                                      for c in names):
        return result(DEGENERATE, f"every limit diverged, moves away or is clearly not falling "
                                  f"(slope interval above {-flat_slope:+.2f}) as n grows (up "
                                  f"to n={width})")
    reasons = []
    if best is None:
        reasons.append("every limit diverged in some cell")
    else:
        if not falling:
            reasons.append(f"{best} is not clearly falling (slope {fit.slope:+.2f}, 95% CI "
                           f"[{fit.slope_low:+.2f}, {fit.slope_high:+.2f}])")
        for c in close:
            f = fits[c]
            reasons.append(f"{c} is not clearly {ratio:g}x farther than {best} (ratio "
                           f"{f.ratio:.2f}, 95% CI [{f.ratio_low:.2f}, {f.ratio_high:.2f}])")
    at_estimates = all(diverged[c] or fits[c].slope > 0 for c in names) or (
        best is not None and fit.slope < -slope_threshold
        and all(diverged[c] or fits[c].ratio > ratio for c in close))
    return result(UNDETERMINED, f"undetermined at n <= {width}: " + "; ".join(reasons),
                  at_estimates)
