"""Activation functions sigma, their first and second derivatives, as Numba kernels.

An activation is passed to kernels as a small integer code (see :data:`ACTIVATIONS`) so
that one compiled kernel serves every activation. ``relu`` is what the papers' experiments
use; ``tanh``, ``softplus`` and ``sigmoid`` are smooth, as the limit theorems require.
"""
import math

from numba import njit

ACTIVATIONS = {"relu": 0, "tanh": 1, "softplus": 2, "sigmoid": 3}


def activation_code(name):
    """Return the kernel code of activation ``name``, raising ``ValueError`` if unknown."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


@njit(cache=True, inline="always")
def _sigma(code, x):
    """sigma(x) for activation ``code``."""
    if code == 0:
        return x if x > 0.0 else 0.0 * x
    if code == 1:
        return math.tanh(x)
    if code == 2:
        # log(1 + e^x) without overflow
        return max(x, 0.0 * x) + math.log1p(math.exp(-abs(x)))
    return 1.0 / (1.0 + math.exp(-x))


@njit(cache=True, inline="always")
def _dsigma(code, x):
    """sigma'(x); for relu the derivative at 0 is taken as 0 (as autograd does)."""
    if code == 0:
        return 1.0 + 0.0 * x if x > 0.0 else 0.0 * x
    if code == 1:
        t = math.tanh(x)
        return 1.0 - t * t
    s = 1.0 / (1.0 + math.exp(-x))
    if code == 2:
        return s
    return s * (1.0 - s)


@njit(cache=True, inline="always")
def _d2sigma(code, x):
    """sigma''(x); zero for relu (almost everywhere)."""
    if code == 0:
        return 0.0 * x
    if code == 1:
        t = math.tanh(x)
        return -2.0 * t * (1.0 - t * t)
    s = 1.0 / (1.0 + math.exp(-x))
    if code == 2:
        return s * (1.0 - s)
    return s * (1.0 - s) * (1.0 - 2.0 * s)


@njit(cache=True, inline="always")
def _activate_row(code, pre, value, deriv):
    """value = sigma(pre) and, if ``deriv`` is non-empty, deriv = sigma'(pre) (1-D rows).

    The branch on ``code`` sits outside the loops so each loop vectorises.
    """
    with_deriv = deriv.shape[0] > 0
    # constants in the rows' own precision, so float32 rows are not widened to float64
    zero = value.dtype.type(0.0)
    one = value.dtype.type(1.0)
    if code == 0:
        for j in range(pre.shape[0]):
            value[j] = max(pre[j], zero)
        if with_deriv:
            for j in range(pre.shape[0]):
                deriv[j] = one if pre[j] > zero else zero
    elif with_deriv and code == 1:
        # σ' = 1 − σ² from the σ just computed: one tanh per entry instead of two
        for j in range(pre.shape[0]):
            t = math.tanh(pre[j])
            value[j] = t
            deriv[j] = one - t * t
    elif with_deriv and code == 3:
        # σ' = σ(1 − σ) from the σ just computed: one exp per entry instead of two
        for j in range(pre.shape[0]):
            s = one / (one + math.exp(-pre[j]))
            value[j] = s
            deriv[j] = s * (one - s)
    else:
        for j in range(pre.shape[0]):
            value[j] = _sigma(code, pre[j])
        if with_deriv:
            for j in range(pre.shape[0]):
                deriv[j] = _dsigma(code, pre[j])

