"""Distances between particle clouds and between predictors."""
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from ._validate import check_array


def _pair(first, second):
    first = check_array(first, "first", 2)
    second = check_array(second, "second", 2, shape=first.shape)
    return first, second


def coupled_rms(first, second):
    """The paper's RMS distance between two clouds with the same indexing.

    sqrt(mean_i |w_i − w'_i|² + mean_i (a_i − a'_i)²) = sqrt(mean_i |x_i − x'_i|²) for
    particles x_i = (a_i, w_i[, b_i]) of shape (n, p).
    """
    first, second = _pair(first, second)
    return float(np.sqrt(np.mean(np.sum((first - second) ** 2, axis=1))))


def wasserstein2(first, second):
    """Exact W2 distance between the empirical measures of two equal-size clouds.

    Solved as an assignment problem (``scipy.optimize.linear_sum_assignment``) on squared
    Euclidean costs; O(n³), practical up to a few thousand particles.
    """
    first, second = _pair(first, second)
    cost = cdist(first, second, "sqeuclidean")
    rows, cols = linear_sum_assignment(cost)
    return float(np.sqrt(cost[rows, cols].mean()))


def predictor_distance(first, second):
    """RMS difference of two predictors on the data, sqrt(mean_j (f_j − g_j)²)."""
    first = check_array(first, "first", 1)
    second = check_array(second, "second", 1, shape=first.shape)
    return float(np.sqrt(np.mean((first - second) ** 2)))
