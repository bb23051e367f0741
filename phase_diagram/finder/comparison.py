"""The single-width rule of ``locate`` and the phase maps (:func:`compare_candidates`).

The *nearest* limit has the smallest mean log distance; it *wins clearly* when every other
limit is clearly above it (the 95% interval of its paired log ratio to the nearest lies above
log ``ratio``, as in :mod:`.decision`); no limit is *close* when the nearest one's distance,
relative to the scale (the RMS of the targets), is above ``close_threshold``. The limit that
*describes* the network is the simplest limit (fewest constants: ``wgf`` < ``penalized-wgf``,
``jump-poisson`` < ``jump-bernoulli``, ``critical``; then the nearer) whose distance is within
the factor ``describe_ratio`` (default 1.25) of the nearest one: with the constants of the
width plugged in, the limits with more constants contain the simpler ones, so the nearest limit
alone is biased towards them. (``locate`` and the maps run the limits with 4 and 2 times more
particles than dropout, copies of its own, so a jump limit's own noise adds at most √(1 + 1/2)
≈ 1.22 to the distance: hence 25% rather than the factor 2 of the scans.)
"""
import dataclasses
import math

import numpy as np

from meanfield_dropout.validation import check_positive, check_real

from .decision import DEFAULT_RATIO, paired_log_ratio

__all__ = ["DEFAULT_DESCRIBE", "DEFAULT_CLOSE", "NONE", "COMPLEXITY", "Comparison",
           "check_comparison_settings", "compare_candidates"]

DEFAULT_DESCRIBE = 1.25
DEFAULT_CLOSE = 0.1
NONE = "none"
#: Number of constants of each limit (α, β, τ): the order of "simplest".
COMPLEXITY = {"wgf": 0, "penalized-wgf": 1, "jump-poisson": 1, "jump-bernoulli": 2,
              "critical": 2}


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`compare_candidates` at one width.

    Attributes
    ----------
    nearest : str or None
        The limit with the smallest mean log distance (None if all diverged).
    runner_up : str or None
    margin, margin_low, margin_high : float
        Paired ratio runner-up / nearest and its interval (inf without a runner-up).
    clear : bool
        Every other limit is clearly at least ``ratio`` times farther (or diverged); False
        when no other limit was run.
    close : bool
        The nearest limit's relative distance is at most ``close_threshold``.
    relative : dict
        limit → geometric-mean distance / scale (inf if diverged).
    ratios : dict
        limit → (ratio, low, high) to the nearest limit.
    describes : str
        The simplest limit within ``describe_ratio`` of the nearest, or ``"none"`` when no
        limit is close.
    describe_margin : float
        Smallest ratio to the nearest of the limits not within ``describe_ratio`` (inf if
        none): how clearly the others are excluded.
    """

    nearest: str | None
    runner_up: str | None
    margin: float
    margin_low: float
    margin_high: float
    clear: bool
    close: bool
    relative: dict
    ratios: dict
    describes: str
    describe_margin: float
    settings: dict


def check_comparison_settings(ratio=DEFAULT_RATIO, describe_ratio=DEFAULT_DESCRIBE,
                              close_threshold=DEFAULT_CLOSE, level=0.95):
    """The settings of :func:`compare_candidates` as floats, checked: ``ratio`` > 1,
    ``describe_ratio`` ≥ 1, ``close_threshold`` > 0, ``level`` in (0, 1) (a ``ValueError``
    naming the setting otherwise). Callers that measure first check them before measuring."""
    ratio = check_real(ratio, "ratio")
    describe_ratio = check_real(describe_ratio, "describe_ratio")
    close_threshold = check_positive(close_threshold, "close_threshold")
    level = check_real(level, "level")
    if not ratio > 1:
        raise ValueError(f"ratio must be a finite number > 1, got {ratio!r}")
    if not describe_ratio >= 1:
        raise ValueError(f"describe_ratio must be a finite number >= 1, got {describe_ratio!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    return ratio, describe_ratio, close_threshold, level


def compare_candidates(distances, *, scale=1.0, ratio=DEFAULT_RATIO,
                       describe_ratio=DEFAULT_DESCRIBE, close_threshold=DEFAULT_CLOSE,
                       level=0.95):
    """Nearest limit at one width, how clearly it wins, and the limit that describes it.

    Parameters
    ----------
    distances : dict
        limit → array (R,) of distances over repeats (paired: repeat r of every limit shares
        the dropout run); non-finite = diverged.
    scale : float
        The size distances are measured against (``locate`` uses the RMS of the targets).
    ratio, describe_ratio, close_threshold, level : float
        As in the module docstring.

    Returns
    -------
    Comparison
    """
    if not distances:
        raise ValueError("distances must hold at least one candidate")
    scale = check_positive(scale, "scale")
    ratio, describe_ratio, close_threshold, level = check_comparison_settings(
        ratio, describe_ratio, close_threshold, level)
    d = {c: np.atleast_1d(np.asarray(v, dtype=float)) for c, v in distances.items()}
    alive = {c: v for c, v in d.items() if np.isfinite(v).all() and np.all(v >= 0)}
    logs = {c: float(np.mean(np.log(np.maximum(v, np.finfo(float).tiny))))
            for c, v in alive.items()}
    relative = {c: math.exp(logs[c]) / scale if c in logs else math.inf for c in d}
    order = sorted(logs, key=lambda c: (logs[c], c))
    settings = dict(scale=float(scale), ratio=float(ratio), describe_ratio=float(describe_ratio),
                    close_threshold=float(close_threshold), level=float(level))
    if not order:
        return Comparison(None, None, math.inf, math.inf, math.inf, False, False, relative,
                          {c: (math.inf,) * 3 for c in d}, NONE, math.inf, settings)
    nearest = order[0]
    tiny = np.finfo(float).tiny
    ratios = {}
    for c in d:
        if c == nearest:
            ratios[c] = (1.0, 1.0, 1.0)
        elif c in alive:
            m, lo, hi = paired_log_ratio(np.maximum(d[c], tiny), np.maximum(d[nearest], tiny),
                                         level)
            ratios[c] = (math.exp(m), math.exp(lo), math.exp(hi))
        else:
            ratios[c] = (math.inf,) * 3
    runner_up = order[1] if len(order) > 1 else None
    margin = ratios[runner_up] if runner_up else (math.inf,) * 3
    clear = len(d) > 1 and all(ratios[c][1] > ratio for c in d if c != nearest)
    close = relative[nearest] <= close_threshold
    within = [c for c in d if ratios[c][0] <= describe_ratio]
    describes = (min(within, key=lambda c: (COMPLEXITY.get(c, 9), logs[c], c)) if close
                 else NONE)
    outside = [ratios[c][0] for c in d if c not in within]
    return Comparison(nearest, runner_up, *margin, clear, close, relative, ratios, describes,
                      min(outside, default=math.inf), settings)
