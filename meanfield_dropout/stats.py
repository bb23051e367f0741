"""Log–log slope fits and Student-t intervals, shared by every study and figure.

Rates are measured as slopes of log distance (or log error) against log width (or log
learning rate): the convergence of dropout to its limit as n grows (Chizat, Marion & Yesbay,
2025) and the weak order of the SMEs in η (Zhang, Li, Luo & Xu, 2024, Thm 1).
"""
import numpy as np
from scipy import stats

from .validation import check_array


def loglog_fit(x, y):
    """Least-squares fit log y = intercept + slope · log x, for each row of ``y``.

    Parameters
    ----------
    x : array_like, shape (W,)
        At least two positive values.
    y : array_like, shape (..., W)
        Positive values.

    Returns
    -------
    slope, slope_error, intercept : float or ndarray, shape (...)
        ``slope_error`` is the standard error from the residuals (NaN with two points).

    Raises
    ------
    ValueError
        For fewer than two points or a value ≤ 0 (no log–log fit).
    """
    x = check_array(x, "x", 1)
    try:
        y = np.asarray(y, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("y must be a numeric array of shape (..., len(x))") from None
    if y.shape[-1:] != x.shape:
        raise ValueError(f"y must have shape (..., {x.size}), got {y.shape}")
    if x.size < 2 or np.any(x <= 0) or not np.all(y > 0) or not np.all(np.isfinite(y)):
        raise ValueError("x and y need >= 2 entries, all finite and > 0, for a log-log fit")
    lx, ly = np.log(x), np.log(y)
    dx = lx - lx.mean()
    sxx = dx @ dx
    slope = (ly - ly.mean(axis=-1, keepdims=True)) @ dx / sxx
    intercept = ly.mean(axis=-1) - slope * lx.mean()
    resid = ly - intercept[..., None] - slope[..., None] * lx
    dof = x.size - 2
    error = (np.sqrt(np.sum(resid ** 2, axis=-1) / dof / sxx) if dof > 0
             else np.full(slope.shape, np.nan))
    if slope.ndim == 0:
        return float(slope), float(error), float(intercept)
    return slope, error, intercept


def fit_slopes(widths, distances):
    """Log–log slopes of distance against width, one per repeat, and their 95% interval.

    Parameters
    ----------
    widths : sequence of int, length W
    distances : ndarray, shape (R, W) or (W,)
        Distances ≥ 0 (zeros are clipped to the smallest positive float).

    Returns
    -------
    dict
        ``slopes`` (R,), ``slope`` (mean), ``slope_std`` (over repeats), ``slope_ci`` (lower,
        upper) the 95% Student-t interval of the mean slope (needs R ≥ 2; else (nan, nan)).

    Raises
    ------
    ValueError
        For shapes that do not match, fewer than two widths, or non-finite distances.
    """
    widths = check_array(widths, "widths", 1)
    try:
        dist = np.asarray(distances, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("distances must be a numeric array of shape (repeats, widths)") \
            from None
    if dist.ndim not in (1, 2) or dist.shape[-1] != widths.size:
        raise ValueError(f"distances must have shape (repeats, {widths.size}) for "
                         f"{widths.size} widths, got {dist.shape}")
    dist = np.maximum(dist, np.finfo(float).tiny)
    slopes = np.atleast_1d(loglog_fit(widths, dist)[0])
    mean, half = (float(v) for v in mean_interval(slopes))
    std = float(slopes.std(ddof=1)) if slopes.size >= 2 else 0.0
    return dict(slopes=slopes, slope=mean, slope_std=std,
                slope_ci=np.array([mean - half, mean + half]))


def mean_interval(values):
    """Mean over the last axis and the half-width of its 95% Student-t interval.

    NaN entries (diverged runs) are left out; with fewer than two values the half-width is NaN.
    """
    count = np.sum(np.isfinite(values), axis=-1)
    mean = np.where(count > 0, np.nansum(values, axis=-1) / np.maximum(count, 1), np.nan)
    var = np.nansum((values - mean[..., None]) ** 2, axis=-1) / np.maximum(count - 1, 1)
    sem = np.sqrt(var / np.maximum(count, 1))
    half = np.where(count > 1, stats.t.ppf(0.975, np.maximum(count - 1, 1)) * sem, np.nan)
    return mean, half
