"""Exact law of the SME paper's dropout gradient, by enumerating all 2^m masks (tests only)."""
import itertools

import numpy as np

from meanfield_dropout.sme.model import dropout_gradient


def mask_law(prob, theta):
    """Dropout gradients over all 2^m masks and their probabilities.

    Returns
    -------
    grads : ndarray, shape (2^m, D)
    weights : ndarray, shape (2^m,)
        Probability of each mask (keep probability ``prob.keep_prob`` per unit); sums to 1.
    """
    p, m = prob.keep_prob, prob.width
    grads, weights = [], []
    for bits in itertools.product((0, 1), repeat=m):
        bits = np.array(bits)
        grads.append(dropout_gradient(prob, theta, bits / p))
        weights.append(np.prod(np.where(bits == 1, p, 1 - p)))
    return np.array(grads), np.array(weights)
