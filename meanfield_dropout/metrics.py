"""Distances between particle clouds and between predictors."""
import numpy as np

from .validation import check_array, check_choice, check_int
from .runtime.memory import check_memory


def _pair(first, second):
    if np.iscomplexobj(first) or np.iscomplexobj(second):
        raise ValueError("particle clouds must be real, got complex values")
    first = check_array(first, "first", 2)
    second = check_array(second, "second", 2, shape=first.shape)
    return first, second


def coupled_rms(first, second):
    """The paper's RMS distance between two clouds with the same indexing.

    sqrt(mean_i |w_i − w'_i|² + mean_i (a_i − a'_i)²) = sqrt(mean_i |x_i − x'_i|²) for
    particles x_i = (a_i, w_i[, b_i]) of shape (n, p).
    """
    first, second = _pair(first, second)
    if first.shape[0] == 0:
        raise ValueError("coupled_rms needs non-empty clouds, got 0 particles")
    return float(np.sqrt(np.mean(np.sum((first - second) ** 2, axis=1))))


#: W2 solvers: exact assignment (SciPy), exact network simplex (POT) and sliced W2 (POT).
W2_METHODS = ("assignment", "network-simplex", "sliced")
#: Largest cloud for the O(n³) assignment solver; above it use "network-simplex" or "sliced".
MAX_ASSIGNMENT_POINTS = 5000


def _ot():
    try:
        import ot
    except ImportError:
        raise ValueError("this W2 method needs POT: pip install 'meanfield-dropout[ot]'") \
            from None
    return ot


def wasserstein2(first, second, *, method="assignment", projections=500, seed=0):
    """W2 distance between the empirical measures of two equal-size clouds.

    Parameters
    ----------
    first, second : ndarray, shape (n, p)
    method : {"assignment", "network-simplex", "sliced"}
        ``assignment``: exact, as an assignment problem on squared Euclidean costs
        (``scipy.optimize.linear_sum_assignment``), O(n³) time and O(n²) memory, refused
        above :data:`MAX_ASSIGNMENT_POINTS` points. ``network-simplex``: exact, POT's
        ``ot.emd2`` (the optional ``ot`` extra), O(n²) memory, much faster at large n.
        ``sliced``: POT's sliced W2 over ``projections`` random directions, O(n log n) per
        direction and no cost matrix; it is a lower bound of W2 (equal for p = 1), for clouds
        too large for the exact solvers.
    projections : int
        Directions of the sliced estimate.
    seed : int
        Seed of the sliced estimate's directions.

    Returns
    -------
    float
    """
    first, second = _pair(first, second)
    check_choice(method, "method", W2_METHODS)
    n = first.shape[0]
    if n == 0:
        raise ValueError("W2 needs non-empty clouds, got 0 particles")
    if method == "sliced":
        projections = check_int(projections, "projections", low=1)
        value = _ot().sliced_wasserstein_distance(first, second, n_projections=projections,
                                                  seed=check_int(seed, "seed", low=0))
        return float(value)
    if method == "assignment" and n > MAX_ASSIGNMENT_POINTS:
        raise ValueError(f"exact W2 by assignment is limited to {MAX_ASSIGNMENT_POINTS} "
                         f"particles (O(n^3) time), got {n}; use method='network-simplex' "
                         f"or 'sliced' (POT), or compare random subsets")
    check_memory(8 * n * n * 2, f"the {n} x {n} W2 cost matrix",
                 "use method='sliced' or compare random subsets")
    # imported here: scipy.optimize takes 0.2 s to import, and most runs never compute an exact W2
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist
    cost = cdist(first, second, "sqeuclidean")
    if method == "network-simplex":
        weights = np.full(n, 1.0 / n)
        return float(np.sqrt(max(0.0, _ot().emd2(weights, weights, cost,
                                                  numItermax=max(100_000, 50 * n * n)))))
    rows, cols = linear_sum_assignment(cost)
    return float(np.sqrt(cost[rows, cols].mean()))


def predictor_distance(first, second):
    """RMS difference of two predictors on the data, sqrt(mean_j (f_j − g_j)²)."""
    if np.size(first) == 0:
        raise ValueError("predictors must be evaluated on at least one data point")
    first = check_array(first, "first", 1)
    second = check_array(second, "second", 1, shape=first.shape)
    return float(np.sqrt(np.mean((first - second) ** 2)))
