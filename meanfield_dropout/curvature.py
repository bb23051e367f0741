"""Curvature of the two-layer network's loss: Hessian–vector products, (batch) sharpness.

The diagnostics that the MNIST experiment of Chizat, Marion & Yesbay (2025) logs along
training, as library functions on the exact Hessian–vector product of the kernel layer
(:func:`meanfield_dropout.kernels.second_order._hessian_vector_product`: O(n·m·(K + d)) per product, no
dense Hessian):

* :func:`sharpness` — the top eigenvalue λ_max of the Hessian of the unmasked training loss
  L(θ) = mean_j loss(f(θ, z_j), y_j), by Lanczos with full reorthogonalisation, optionally
  warm-started (from the previous eigenvector along a run) and on a subsample of the data.
  GD on L with step η is stable only while λ_max < 2/η ("edge of stability"); the engine's
  master learning rate τ is the step η = τ·n in the mean-field scaling.
* :func:`batch_sharpness` — E_B[g_Bᵀ H_B g_B / ‖g_B‖²] over minibatches B, with g_B, H_B
  the gradient and Hessian of the batch loss (Andreyev & Beneventano, 2024), optionally also
  over dropout masks M (g and H of the masked batch loss f_M = s Σ_i M_i φ(x_i)), estimated by
  Monte Carlo with its standard error.

Parameters are the particle array X (n, K + d [+ 1]) of :mod:`meanfield_dropout.network`;
vectors in parameter space have X's shape and the Euclidean inner product of all entries.
"""
import math
from typing import NamedTuple

import numpy as np
from scipy.linalg import eigh_tridiagonal

from .validation import (check_array, check_int, check_keep_prob, check_nonnegative,
                         check_positive, seed_sequence)
from .kernels.core import _backward_update, _forward, _loss_derivative
from .kernels.second_order import _hessian_vector_product
from .kernels.structs import Kept, Rows, Update, Weights
from .runtime import tables
from .runtime.memory import NOMINAL_RATE, announce_cost, check_memory, warn_long_run
from .kernels.twins import for_run
from .runtime.threads import kernel_threads
from .runtime.compiling import run_kernel
from .network import (NetworkData, check_particles, network_data,
                      output_scale_factor)


class _Net(NamedTuple):
    """Particles X (n, p) and the output scale s on validated data and architecture."""

    data: NetworkData
    X: np.ndarray
    scale: float

    def subset(self, rows=None, points=None, weight=1.0):
        """The network on neurons ``rows`` with output scale ``weight``·s, on data ``points``."""
        X = self.X if rows is None else np.ascontiguousarray(self.X[rows])
        data = self.data
        if points is not None:
            inputs = np.ascontiguousarray(data.inputs[points])
            data = data._replace(inputs=inputs, inputs_t=np.ascontiguousarray(inputs.T),
                                 targets=np.ascontiguousarray(data.targets[:, points]))
        return _Net(data, X, self.scale * weight)


def _net(particles, inputs, targets, loss, activation, bias, output_scale):
    data = network_data(inputs, targets, loss=loss, activation=activation, bias=bias)
    X = check_particles(particles, data.inputs.shape[1], bias, outputs=data.outputs)
    return _Net(data, X, output_scale_factor(output_scale, X.shape[0]))


def _gradient(net, penalty=0.0):
    """∇L of the (penalised) batch loss: s · Dφ(x_i)ᵀ(r + penalty φ(x_i)/m) per neuron."""
    d = net.data
    n, m = net.X.shape[0], d.inputs.shape[0]
    rows = Rows(np.arange(n), n)
    f = np.empty((d.outputs, m))
    pre = np.empty((0, m))
    run_kernel(_forward, (net.X, d, rows, Weights(1.0, net.scale, n), pre, f), "curvature",
               net.X.dtype.name)
    residual = np.empty_like(f)
    _loss_derivative(d.loss, f, d.targets, residual)
    out = np.zeros_like(net.X)
    kept = Kept(pre, np.empty((0, 0), dtype=np.uint8), np.empty(0, dtype=np.int64))
    for_run(_backward_update)(net.X, d, rows, Update(-net.scale, penalty, residual), kept, out)
    return out


def _kernel_threads(net):
    """The Numba threads of ``net``'s size, BLAS on one thread
    (:func:`meanfield_dropout.runtime.threads.kernel_threads`): one thread, and the kernels'
    serial twins, for a small network."""
    return kernel_threads(net.X.shape[0] * net.data.inputs.shape[0])


def _hvp(net, V, penalty=0.0):
    d = net.data
    out = np.empty_like(net.X)
    args = (net.X, np.ascontiguousarray(V), d, net.scale, penalty, out)
    run_kernel(_hessian_vector_product, args, "curvature", net.X.dtype.name)
    return out


def loss_gradient(particles, inputs, targets, *, loss="square", activation="relu",
                  bias=False, output_scale="mean_field", penalty=0.0):
    """Gradient ∇L(X) of the mean loss of the unmasked network, in X's layout.

    L(X) = mean_j loss(f(z_j), y_j) + (penalty · s / 2m) Σ_ij |φ(x_i, z_j)|², the loss whose
    Hessian :func:`hessian_vector_product` applies. Parameters as in
    :func:`hessian_vector_product`.
    """
    net = _net(particles, inputs, targets, loss, activation, bias, output_scale)
    with _kernel_threads(net):
        return _gradient(net, check_nonnegative(penalty, "penalty"))


def hessian_vector_product(particles, inputs, targets, direction, *, loss="square",
                           activation="relu", bias=False, output_scale="mean_field",
                           penalty=0.0):
    """The exact Hessian of the training loss times a direction, ∇²L(X)·V.

    Parameters
    ----------
    particles : ndarray, shape (n, K + d [+ 1])
        Neurons x_i = (a_i, w_i[, b_i]) of f(z) = s Σ_i a_i σ(w_i·z + b_i).
    inputs : ndarray, shape (m, d)
    targets : ndarray, shape (m,) or (m, K)
        As for :func:`meanfield_dropout.simulate` (labels ±1 for ``logistic``, one-hot rows
        for ``softmax``).
    direction : ndarray, shape of ``particles``
        V.
    loss : {"square", "logistic", "softmax"}
    activation : str
    bias : bool
    output_scale : {"mean_field", "standard"}
        s = 1/n or 1.
    penalty : float
        λ ≥ 0 of the explicit penalty (λ s/2m) Σ_ij |φ(x_i, z_j)|² (0: the plain loss).

    Returns
    -------
    ndarray, shape of ``particles``

    Notes
    -----
    Forward mode along V, then one back-propagation (see the kernel): two passes over the
    data, O(n·m·(K + d)) operations. For ReLU, σ'' = 0 away from the kinks (the Hessian
    almost everywhere).
    """
    net = _net(particles, inputs, targets, loss, activation, bias, output_scale)
    V = check_array(direction, "direction", 2, shape=net.X.shape)
    with _kernel_threads(net):
        return _hvp(net, V, check_nonnegative(penalty, "penalty"))


#: Floating-point operations of one gradient and Hessian–vector product per neuron, data point
#: and particle entry (the forward, backward and second-order passes of the kernel layer).
PRODUCT_OPERATIONS = 8


def sharpness_seconds(width, points, entries, iterations):
    """Estimated seconds of one core of :func:`sharpness` (a cost model at
    :data:`~meanfield_dropout.runtime.memory.NOMINAL_RATE`, excluding compilation).

    At most ``iterations`` Hessian–vector products on P = ``points`` data points,
    :data:`PRODUCT_OPERATIONS` · P · n · p operations each, and their reorthogonalisation,
    twice against up to ``iterations`` basis vectors of n · p entries (4 operations per entry
    and vector).

    Parameters
    ----------
    width, points, entries, iterations : int
        n, P, p (the particles' columns) and the maximum number of products.

    Returns
    -------
    float
    """
    size = float(width) * entries
    return iterations * (PRODUCT_OPERATIONS * points + 4 * iterations) * size / NOMINAL_RATE


def batch_sharpness_seconds(width, batch_size, entries, draws):
    """Estimated seconds of one core of :func:`batch_sharpness`: per draw a gradient and a
    Hessian–vector product on B = ``batch_size`` points, :data:`PRODUCT_OPERATIONS` · B · n · p
    operations (a cost model at :data:`~meanfield_dropout.runtime.memory.NOMINAL_RATE`,
    excluding compilation).

    Returns
    -------
    float
    """
    return draws * PRODUCT_OPERATIONS * float(batch_size) * width * entries / NOMINAL_RATE


class Sharpness(NamedTuple):
    """Result of :func:`sharpness`.

    Attributes
    ----------
    value : float
        The top Ritz value, an estimate of λ_max(∇²L).
    vector : ndarray, shape of the particles
        Its unit Ritz vector (the warm start of the next call along a run).
    residual : float
        ‖∇²L v − value · v‖ (the Lanczos bound, exact in exact arithmetic); the error of
        ``value`` is at most this, and about residual²/gap.
    iterations : int
        Hessian–vector products used.
    converged : bool
        Whether residual ≤ tol · |value| (or the Krylov space became invariant).
    points : int
        Data points the loss was evaluated on (the subsample size).
    """

    value: float
    vector: np.ndarray
    residual: float
    iterations: int
    converged: bool
    points: int

    __repr__ = tables.compact_repr


def sharpness(particles, inputs, targets, *, loss="square", activation="relu", bias=False,
              output_scale="mean_field", iterations=20, tol=1e-3, start=None, points=None,
              seed=0):
    """Top eigenvalue of the Hessian of the unmasked training loss, by Lanczos.

    Lanczos with full reorthogonalisation (classical Gram–Schmidt, twice) on exact
    Hessian–vector products: after j products the top eigenvalue of the j×j tridiagonal
    matrix is the Ritz value, and β_{j+1}|y_j| (y its eigenvector) is the residual norm
    ‖Hv − θv‖. The iteration stops when that residual is at most ``tol``·|θ| or after
    ``iterations`` products. The Krylov basis is stored: ``iterations + 1`` vectors of the
    particles' size.

    Parameters
    ----------
    particles, inputs, targets, loss, activation, bias, output_scale
        As in :func:`hessian_vector_product`.
    iterations : int
        Maximum number of Hessian–vector products (≥ 1). The authors' runs use 15
        warm-started iterations.
    tol : float
        Relative residual at which to stop.
    start : ndarray, shape of the particles, optional
        Starting vector (e.g. the previous ``vector`` along a run); default a Gaussian vector
        drawn from ``seed``.
    points : int, optional
        Evaluate the loss on a random subsample of this many data points (drawn without
        replacement from ``seed``); default all.
    seed : int or numpy.random.SeedSequence

    Returns
    -------
    Sharpness
    """
    net = _net(particles, inputs, targets, loss, activation, bias, output_scale)
    iterations = check_int(iterations, "iterations", low=1)
    tol = check_positive(tol, "tol")
    sample_rng, start_rng = (np.random.default_rng(s) for s in seed_sequence(seed).spawn(2))
    m = net.data.inputs.shape[0]
    if points is not None:
        points = check_int(points, "points", 1, m)
        if points < m:
            net = net.subset(points=np.sort(sample_rng.choice(m, points, replace=False)))
    size = net.X.size
    iterations = min(iterations, size)
    check_memory((iterations + 3) * size * 8, f"a Lanczos basis of {iterations + 1} vectors",
                 "use fewer iterations")
    announce_cost(sharpness_seconds(net.X.shape[0], net.data.inputs.shape[0], net.X.shape[1],
                                    iterations), f"sharpness of {iterations} products")
    q = start_rng.standard_normal(size) if start is None else \
        check_array(start, "start", 2, shape=net.X.shape).ravel().copy()
    with _kernel_threads(net):          # norms included: their sums follow the thread count
        norm = np.linalg.norm(q)
        if not norm > 0:
            raise ValueError("start must not be the zero vector")
        basis = np.empty((iterations + 1, size))
        basis[0] = q / norm
        alpha, beta = [], []
        for j in range(iterations):
            w = _hvp(net, basis[j].reshape(net.X.shape)).ravel()
            alpha.append(float(basis[j] @ w))
            for _ in range(2):                      # full reorthogonalisation, twice
                w -= basis[:j + 1].T @ (basis[:j + 1] @ w)
            b = float(np.linalg.norm(w))
            theta, vectors = eigh_tridiagonal(np.array(alpha), np.array(beta))
            value, y = float(theta[-1]), vectors[:, -1]
            residual = b * abs(float(y[-1]))
            invariant = b <= 1e-14 * max(1.0, abs(value))
            if residual <= tol * abs(value) or invariant or j == iterations - 1:
                break
            beta.append(b)
            basis[j + 1] = w / b
        vector = (basis[:j + 1].T @ y).reshape(net.X.shape)
        vector /= np.linalg.norm(vector)
    return Sharpness(value, vector, residual, j + 1,
                     bool(residual <= tol * abs(value) or invariant), int(net.data.inputs.shape[0]))


class BatchSharpness(NamedTuple):
    """Result of :func:`batch_sharpness`: the Monte Carlo ``mean`` of gᵀHg/‖g‖², its
    standard error ``stderr`` over ``draws`` independent (batch, mask) draws, the
    ``batch_size``, the ``keep_prob`` (1 without masks) and the per-draw ``values``."""

    mean: float
    stderr: float
    draws: int
    batch_size: int
    keep_prob: float
    values: np.ndarray

    __repr__ = tables.compact_repr


def _ratio(net):
    """gᵀHg/‖g‖² of the batch loss of ``net`` (0 when g = 0)."""
    g = _gradient(net)
    gg = float(np.vdot(g, g))
    return float(np.vdot(g, _hvp(net, g))) / gg if gg > 0 else 0.0


def batch_sharpness_terms(particles, inputs, targets, batches, masks=None, keep_prob=1.0, *,
                          loss="square", activation="relu", bias=False,
                          output_scale="mean_field"):
    """gᵀHg/‖g‖² for given minibatches (and dropout masks), one value per draw.

    Parameters
    ----------
    particles, inputs, targets, loss, activation, bias, output_scale
        As in :func:`hessian_vector_product`.
    batches : array_like of int, shape (draws, B)
        Data indices of each minibatch.
    masks : array_like of bool, shape (draws, n), optional
        Kept neurons of each draw; g and H are then those of the masked batch loss, with
        f_M = (s/q) Σ_{i kept} φ(x_i) (a draw that keeps no neuron has g = 0 and value 0).
    keep_prob : float
        q of the masks.

    Returns
    -------
    ndarray, shape (draws,)
    """
    net = _net(particles, inputs, targets, loss, activation, bias, output_scale)
    return _sharpness_terms(net, batches, masks, keep_prob)


def _sharpness_terms(net, batches, masks, keep_prob):
    """:func:`batch_sharpness_terms` of a validated network."""
    m, n = net.data.inputs.shape[0], net.X.shape[0]
    batches = np.asarray(batches)
    if batches.ndim != 2 or not np.issubdtype(batches.dtype, np.integer) or batches.size == 0 \
            or batches.min() < 0 or batches.max() >= m:
        raise ValueError(f"batches must be a (draws, B) array of indices in [0, {m - 1}]")
    if masks is not None:
        masks = np.asarray(masks, dtype=bool)
        if masks.shape != (batches.shape[0], n):
            raise ValueError(f"masks must have shape ({batches.shape[0]}, {n}), got "
                             f"{masks.shape}")
    keep_prob = check_keep_prob(keep_prob)
    out = np.empty(batches.shape[0])
    with _kernel_threads(net):
        for t, batch in enumerate(batches):
            if masks is None:
                out[t] = _ratio(net.subset(points=batch))
            elif masks[t].any():
                out[t] = _ratio(net.subset(rows=np.flatnonzero(masks[t]), points=batch,
                                           weight=1.0 / keep_prob))
            else:
                out[t] = 0.0
    return out


def batch_sharpness(particles, inputs, targets, *, batch_size, draws=64, keep_prob=None,
                    seed=0, loss="square", activation="relu", bias=False,
                    output_scale="mean_field"):
    """Batch sharpness E_B[g_Bᵀ H_B g_B / ‖g_B‖²] by Monte Carlo, with its standard error.

    Every argument is checked before the first draw: a ``ValueError`` naming it, or a
    :class:`~meanfield_dropout.runtime.memory.MemoryLimitError` when the draws' indices and
    masks would not fit in memory (a :class:`~meanfield_dropout.runtime.memory.LongRunWarning`
    when their work is large).

    Parameters
    ----------
    particles, inputs, targets, loss, activation, bias, output_scale
        As in :func:`hessian_vector_product`.
    batch_size : int
        B ∈ [1, m]; each draw takes B points without replacement, as an SGD step does.
    draws : int
        Independent draws (≥ 2 for a standard error).
    keep_prob : float, optional
        With a keep probability q, each draw also takes a dropout mask (neurons kept
        i.i.d. with probability q) and g, H are those of the masked batch loss (the
        average over minibatches and masks); None: no masks.
    seed : int or numpy.random.SeedSequence

    Returns
    -------
    BatchSharpness
    """
    net = _net(particles, inputs, targets, loss, activation, bias, output_scale)
    m, n = net.data.inputs.shape[0], net.X.shape[0]
    batch_size = check_int(batch_size, "batch_size", 1, m)
    draws = check_int(draws, "draws", low=1)
    if keep_prob is not None:
        keep_prob = check_keep_prob(keep_prob)
    batch_rng, mask_rng = (np.random.default_rng(s) for s in seed_sequence(seed).spawn(2))
    # the draws' indices (int64) and masks (float64 uniforms, then bool); per draw a gradient
    # and a Hessian-vector product, a few passes of O(n B (K + d)) each
    check_memory(draws * (8 * batch_size + (9 * n if keep_prob is not None else 0)),
                 f"{draws} draws of batch_size {batch_size}", "ask for fewer draws")
    seconds = batch_sharpness_seconds(n, batch_size, net.X.shape[1], draws)
    warn_long_run(seconds, f"batch_sharpness of {draws} draws",
                  "ask for fewer draws")
    announce_cost(seconds, f"batch_sharpness of {draws} draws")
    batches = np.stack([batch_rng.choice(m, batch_size, replace=False) for _ in range(draws)])
    masks = None
    if keep_prob is not None:
        masks = mask_rng.random((draws, n)) < keep_prob
    values = _sharpness_terms(net, batches, masks, 1.0 if keep_prob is None else keep_prob)
    stderr = float(values.std(ddof=1) / math.sqrt(draws)) if draws > 1 else math.nan
    return BatchSharpness(float(values.mean()), stderr, draws, batch_size,
                          1.0 if keep_prob is None else keep_prob, values)
