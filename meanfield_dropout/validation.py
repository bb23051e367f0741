"""Argument checks shared by every public entry point.

Each check raises ``ValueError`` naming the argument and its allowed range, so bad input
never reaches a kernel (where it would give a deep traceback or a silent NaN).
"""
import math
import numbers

import numpy as np

#: Smallest keep probability: masks are 1/q, finite for every q ≥ this.
MIN_KEEP_PROB = 1e-300


def check_keep_prob(value, name="keep_prob"):
    """Keep probability q (the papers' q, or p in the SME paper) must lie in (0, 1].

    Masks take the value 1/q, so q must also be large enough for 1/q to be a finite float
    (q ≥ :data:`MIN_KEEP_PROB`).
    """
    value = check_real(value, name)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    if value < MIN_KEEP_PROB:
        raise ValueError(f"{name} must be in [{MIN_KEEP_PROB:g}, 1] (dropout masks are "
                         f"1/{name}, which must be a finite number), got {value!r}")
    return value


def check_positive(value, name):
    """A finite, strictly positive real (learning rates, times, constants)."""
    value = check_real(value, name)
    if not value > 0.0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def check_nonnegative(value, name):
    """A finite real >= 0."""
    value = check_real(value, name)
    if not value >= 0.0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def check_real(value, name):
    """A finite real number, returned as ``float``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return value


def check_int(value, name, low=None, high=None):
    """An integer in ``[low, high]`` (either bound optional)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value}")
    return value


def check_choice(value, name, allowed):
    """One of a fixed set of names."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")
    return value


def check_array(value, name, ndim, dtype=np.float64, shape=None):
    """A finite, real array with ``ndim`` dimensions, converted to ``dtype`` (C-contiguous).

    ``shape`` may fix some dimensions: ``None`` entries are free.
    """
    try:
        complex_values = np.iscomplexobj(value)
    except (TypeError, ValueError):          # ragged or not numeric: reported below
        complex_values = False
    if complex_values:
        raise ValueError(f"{name} must be real, got complex values")
    try:
        arr = np.ascontiguousarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array: {exc}") from None
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if shape is not None:
        for axis, (want, got) in enumerate(zip(shape, arr.shape)):
            if want is not None and want != got:
                raise ValueError(
                    f"{name} has shape {arr.shape}; axis {axis} must have length {want}")
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def seed_sequence(seed, name="seed"):
    """``seed`` (an int ≥ 0 or a ``SeedSequence``) as a fresh ``numpy.random.SeedSequence``.

    ``SeedSequence.spawn`` counts the children it has already given, so spawning twice from
    one object yields different streams. A copy with the same entropy and spawn key makes
    every stream spawned from it a function of the seed alone, however often it is reused.
    """
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key,
                                      pool_size=seed.pool_size)
    return np.random.SeedSequence(check_int(seed, name, low=0))


def seed_record(seed):
    """The JSON record of a seed: the int itself, or a ``SeedSequence``'s entropy and key."""
    if isinstance(seed, np.random.SeedSequence):
        return {"entropy": str(seed.entropy), "spawn_key": list(seed.spawn_key)}
    return seed
