"""Line fits and Student-t intervals, shared by every study, figure and the finder's rules.

Rates are measured as slopes of log distance (or log error) against log width (or log
learning rate): the convergence of dropout to its limit as n grows (Chizat, Marion & Yesbay,
2025) and the weak order of the SMEs in η (Zhang, Li, Luo & Xu, 2024, Thm 1).
"""
import numpy as np

from .validation import check_array


def t_quantile(dof, level=0.95):
    """Half-width of a two-sided Student-t interval at ``level``, in standard errors.

    The quantile t_{(1 + level)/2} with ``dof`` degrees of freedom (scalar or array); ``inf``
    where ``dof`` < 1 (no interval).
    """
    from scipy import stats     # here: importing scipy.stats adds 0.25 s to every command

    dof = np.asarray(dof)
    quantile = np.where(dof >= 1, stats.t.ppf(0.5 + level / 2, np.maximum(dof, 1)), np.inf)
    return float(quantile) if quantile.ndim == 0 else quantile


def line_fit(x, y):
    """Least-squares line y = intercept + slope · x along the last axis of ``y``.

    Plain arrays, no checks: the callers validate. ``x`` needs two distinct values.

    Parameters
    ----------
    x : ndarray, shape (N,)
    y : ndarray, shape (..., N)

    Returns
    -------
    slope, slope_error, intercept, intercept_error : ndarray, shape (...)
        Standard errors from the residuals with N − 2 degrees of freedom (NaN when N = 2).
        The intercept is the line's value at x = 0: shift ``x`` to get it elsewhere.
    """
    dx = x - x.mean()
    sxx = dx @ dx
    slope = (y - y.mean(axis=-1, keepdims=True)) @ dx / sxx
    intercept = y.mean(axis=-1) - slope * x.mean()
    resid = y - intercept[..., None] - slope[..., None] * x
    dof = x.size - 2
    if dof > 0:
        variance = np.sum(resid ** 2, axis=-1) / dof
        slope_error = np.sqrt(variance / sxx)
        intercept_error = np.sqrt(variance * (1.0 / x.size + x.mean() ** 2 / sxx))
    else:
        slope_error = intercept_error = np.full(np.shape(slope), np.nan)
    return slope, slope_error, intercept, intercept_error


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
    slope, error, intercept, _ = line_fit(np.log(x), np.log(y))
    if np.ndim(slope) == 0:
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


def mean_interval(values, level=0.95):
    """Mean over the last axis and the half-width of its Student-t interval at ``level``.

    NaN entries (diverged runs) are left out; with fewer than two values the half-width is NaN.
    """
    count = np.sum(np.isfinite(values), axis=-1)
    mean = np.where(count > 0, np.nansum(values, axis=-1) / np.maximum(count, 1), np.nan)
    var = np.nansum((values - mean[..., None]) ** 2, axis=-1) / np.maximum(count - 1, 1)
    sem = np.sqrt(var / np.maximum(count, 1))
    half = np.where(count > 1, t_quantile(np.maximum(count - 1, 1), level) * sem, np.nan)
    return mean, half
