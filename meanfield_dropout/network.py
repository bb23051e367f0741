"""Public, validated access to the two-layer network of :mod:`meanfield_dropout.kernels.core`.

f(θ, z) = s Σ_i a_i σ(w_i·z + b_i) with particles ``X`` of shape (n, K + d [+ 1]) (output
weights a_i ∈ R^K first, then w_i, then the optional bias b_i), output scale s = 1/n
(``mean_field``, Chizat, Marion & Yesbay 2025) or s = 1 (``standard``, Zhang, Li, Luo &
Xu 2024). The arithmetic lives in :mod:`meanfield_dropout.kernels.core`; this module validates,
converts layouts and returns NumPy arrays.
"""
import math

import numpy as np

from .validation import check_array, check_choice, check_int, seed_sequence
from .kernels.activations import ACTIVATIONS, activation_code
from .kernels.core import LOSSES, _loss_value, _predict
from .kernels.structs import NetworkData
from .runtime.threads import blas_single_thread

OUTPUT_SCALES = ("mean_field", "standard")
DTYPES = {"float64": np.float64, "float32": np.float32}


def output_scale_factor(output_scale, width):
    """The factor s in f = s Σ_i φ(x_i): 1/n for ``mean_field``, 1 for ``standard``."""
    check_choice(output_scale, "output_scale", OUTPUT_SCALES)
    return 1.0 / width if output_scale == "mean_field" else 1.0


def particle_dim(dim, bias, outputs=1):
    """Number of parameters p of one neuron: K + d, plus 1 with a bias."""
    return outputs + dim + int(bias)


def check_particles(particles, dim, bias, name="particles", dtype=np.float64, outputs=1):
    """Validate a particle array of shape (n, K + d [+ 1]) for input dimension ``dim``."""
    arr = check_array(particles, name, 2, dtype=dtype)
    want = particle_dim(dim, bias, outputs)
    if arr.shape[1] != want:
        raise ValueError(
            f"{name} must have shape (width, {want}) for input dimension {dim}, {outputs} "
            f"output(s){' and a bias' if bias else ''}, got {arr.shape}")
    if arr.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one neuron (width >= 1)")
    return arr


def check_targets(targets, points, dtype=np.float64, name="targets"):
    """Targets of shape (m,) (one output) or (m, K), returned output-major, shape (K, m)."""
    if np.ndim(targets) == 1:
        return check_array(targets, name, 1, dtype=dtype, shape=(points,))[None, :]
    arr = check_array(targets, name, 2, dtype=dtype, shape=(points, None))
    if arr.shape[1] < 1:
        raise ValueError(f"{name} must have at least one output column, got {arr.shape}")
    return np.ascontiguousarray(arr.T)


def check_loss_targets(loss, targets, name="targets"):
    """Check that output-major ``targets`` (K, m) suit ``loss``; returns its kernel code."""
    check_choice(loss, "loss", LOSSES)
    outputs = targets.shape[0]
    if loss == "logistic" and (outputs != 1 or not np.all(np.abs(targets) == 1)):
        raise ValueError(f"{name} must be one column of labels -1 or +1 for the logistic "
                         f"loss")
    if loss == "softmax" and (outputs < 2 or not np.all((targets == 0) | (targets == 1))
                              or not np.all(targets.sum(axis=0) == 1)):
        raise ValueError(f"{name} must be one-hot rows with at least 2 classes for the "
                         f"softmax loss")
    return LOSSES[loss]


def network_data(inputs, targets, *, loss="square", activation="relu", bias=False,
                 dtype="float64", dim=None, outputs=None, prefix="", empty_ok=False):
    """Validate data and architecture and bundle them as the kernels read them.

    Parameters
    ----------
    inputs : array_like, shape (m, d)
        Inputs z_j.
    targets : array_like, shape (m,) or (m, K)
        Targets y_j: reals for the square loss, labels ±1 for ``logistic``, one-hot rows for
        ``softmax``.
    loss : {"square", "logistic", "softmax"}
    activation : str
        σ, one of ``relu``, ``tanh``, ``softplus``, ``sigmoid``.
    bias : bool
    dtype : {"float64", "float32"}
    dim, outputs : int, optional
        The input dimension d and output dimension K the data must have (e.g. validation
        data those of the training data).
    prefix : str
        Put before ``inputs``/``targets`` in error messages (``"val_"`` for validation data).
    empty_ok : bool
        Accept m = 0 data points.

    Returns
    -------
    NetworkData

    Raises
    ------
    ValueError
        For data or a choice outside its allowed range (the message names it).
    """
    check_choice(dtype, "dtype", DTYPES)
    ftype = DTYPES[dtype]
    inputs = check_array(inputs, f"{prefix}inputs", 2, dtype=ftype, shape=(None, dim))
    if inputs.shape[0] < 1 and not empty_ok:
        raise ValueError(f"{prefix}inputs must hold at least one data point")
    y = check_targets(targets, inputs.shape[0], dtype=ftype, name=f"{prefix}targets")
    if outputs is not None and y.shape[0] != outputs:
        raise ValueError(f"{prefix}targets must have {outputs} output column(s), got "
                         f"{y.shape[0]}")
    loss_code = check_loss_targets(loss, y, name=f"{prefix}targets")
    return NetworkData(inputs, np.ascontiguousarray(inputs.T), y, y.shape[0], bool(bias),
                       activation_code(activation), loss_code)


def data_names(data):
    """The activation, loss and dtype of :class:`NetworkData` by name (as a run records them)."""
    return dict(activation=next(k for k, v in ACTIVATIONS.items() if v == data.activation),
                loss=next(k for k, v in LOSSES.items() if v == data.loss),
                dtype=data.inputs.dtype.name)


def init_particles(width, dim, *, seed=0, bias=False, dtype="float64", outputs=1):
    """Draw the paper's initialisation: a_i ~ N(0, I_K), w_i ~ N(0, I/d) (and b_i ~ N(0, 1/d)).

    Parameters
    ----------
    width : int
        Number of neurons n ≥ 1.
    dim : int
        Input dimension d ≥ 1.
    seed : int or numpy.random.SeedSequence
    bias : bool
    dtype : {"float64", "float32"}
    outputs : int
        Output dimension K ≥ 1.

    Returns
    -------
    ndarray, shape (width, K + d [+ 1])
    """
    width = check_int(width, "width", low=1)
    dim = check_int(dim, "dim", low=1)
    outputs = check_int(outputs, "outputs", low=1)
    check_choice(dtype, "dtype", DTYPES)
    rng = np.random.default_rng(seed_sequence(seed))
    out = np.empty((width, particle_dim(dim, bias, outputs)))
    if outputs == 1:
        out[:, 0] = rng.standard_normal(width)
    else:
        out[:, :outputs] = rng.standard_normal((width, outputs))
    out[:, outputs:] = rng.standard_normal((width, dim + int(bias))) / math.sqrt(dim)
    return out.astype(DTYPES[dtype])


def predict(particles, inputs, *, activation="relu", bias=False, output_scale="mean_field",
            outputs=1):
    """Evaluate the unmasked network f(θ, z) = s Σ_i a_i σ(w_i·z + b_i) on ``inputs``.

    Parameters
    ----------
    particles : ndarray, shape (n, K + d [+ 1])
        Neurons x_i = (a_i, w_i[, b_i]).
    inputs : ndarray, shape (m, d)
        Data points z_j.
    activation : str
        σ, one of ``relu``, ``tanh``, ``softplus``, ``sigmoid``.
    bias : bool
        Whether the last particle column is a bias b_i.
    output_scale : {"mean_field", "standard"}
        s = 1/n (mean-field) or s = 1.
    outputs : int
        Output dimension K.

    Returns
    -------
    ndarray, shape (m,) for K = 1, else (m, K)
    """
    inputs = check_array(inputs, "inputs", 2)
    X = check_particles(particles, inputs.shape[1], bias, outputs=outputs)
    scale = output_scale_factor(output_scale, X.shape[0])
    with blas_single_thread():
        f = _predict(X, inputs_data(inputs, outputs, bias, activation_code(activation)), scale)
    return f[0] if outputs == 1 else f.T


def inputs_data(inputs, outputs, bias, activation):
    """:class:`NetworkData` of validated ``inputs`` (m, d) without targets (``targets`` of
    shape (K, 0)), for a prediction; ``activation`` is the kernel code of σ."""
    return NetworkData(inputs, np.ascontiguousarray(inputs.T),
                       np.empty((outputs, 0), dtype=inputs.dtype), outputs, bool(bias),
                       activation, LOSSES["square"])


def loss_value(particles, inputs, targets, *, loss="square", **network):
    """Mean loss of the unmasked network on (inputs, targets); ``network`` as in :func:`predict`."""
    check_choice(loss, "loss", LOSSES)
    inputs = check_array(inputs, "inputs", 2)
    y = check_targets(targets, inputs.shape[0])
    network.setdefault("outputs", y.shape[0])
    code = check_loss_targets(loss, y)
    f = predict(particles, inputs, **network)
    f = f[None, :] if f.ndim == 1 else np.ascontiguousarray(f.T)
    return float(_loss_value(code, f, y))
