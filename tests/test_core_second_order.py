"""The core's per-neuron Jacobian-transpose and Hessian-vector-product kernels.

Against the plain NumPy formulas of ``reference.py`` (to rounding), against central finite
differences (to the finite-difference error model) and for thread-count independence.
Rounding tolerances are twice the running-error bound of one evaluation (``rounding.py``):
the kernel and the reference sum the same terms in different orders.
"""
import numba
import numpy as np
import pytest

from meanfield_dropout.kernels import core, second_order
from meanfield_dropout.kernels.activations import activation_code
from meanfield_dropout.kernels.structs import Kept, NetworkData, Rows, Update, Weights

from . import reference
from . import rounding

U = rounding.U
NO_SIGNS = np.empty((0, 0), dtype=np.uint8)
NO_INDEX = np.empty(0, dtype=np.int64)


def _network(n, d, K, B, bias, loss, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, K + d + int(bias)))
    Z = rng.standard_normal((B, d))
    if loss == "square":
        y = rng.standard_normal((K, B))
    elif loss == "logistic":
        y = np.sign(rng.standard_normal((1, B)))
    else:
        y = np.eye(K)[:, rng.integers(0, K, B)]
    return X, Z, np.ascontiguousarray(Z.T), np.ascontiguousarray(y)


def _data(Z, Zt, y, K, bias, act, loss="square"):
    """The kernels' NetworkData of these arrays."""
    return NetworkData(Z, Zt, y, K, bias, act, core.LOSSES[loss])


def _recompute(B):
    """No kept pre-activations: the backward pass recomputes them."""
    return Kept(np.empty((0, B)), NO_SIGNS, NO_INDEX)


def _gradient(X, Z, Zt, y, K, bias, act, scale, penalty, loss):
    """∇L by the core: the backward pass with step −scale into zeros."""
    data = _data(Z, Zt, y, K, bias, act, loss)
    f = core._predict(X, data, scale)
    r = np.empty_like(f)
    core._loss_derivative(core.LOSSES[loss], f, y, r)
    out = np.zeros_like(X)
    core._backward_update(X, data, Rows(np.arange(X.shape[0]), X.shape[0]),
                          Update(-scale, penalty, r), _recompute(Z.shape[0]), out)
    return out


def _hvp(X, V, Z, Zt, y, K, bias, act, scale, penalty, loss):
    out = np.empty_like(X)
    second_order._hessian_vector_product(X, V, _data(Z, Zt, y, K, bias, act, loss), scale,
                                         penalty, out)
    return out


@pytest.mark.parametrize("activation", ["relu", "tanh", "softplus", "sigmoid"])
@pytest.mark.parametrize("K,bias", [(1, False), (1, True), (3, True)])
def test_jacobian_transpose_matches_reference(activation, K, bias):
    n, d, B = 70, 4, 9  # two blocks of rows
    X, Z, Zt, y = _network(n, d, K, B, bias, "square")
    vectors = np.random.default_rng(1).standard_normal((n, K, B))
    act = activation_code(activation)
    out = np.zeros_like(X)
    second_order._jacobian_transpose(X, _data(Z, Zt, y, K, bias, act), Rows(np.arange(n), n),
                                     -1.0, vectors, _recompute(B), out)
    if K == 1:
        want = reference.jacobian_transpose(X, Z, activation, bias, vectors[:, 0])
    else:
        want = reference.jacobian_transpose_outputs(X, Z, K, activation, bias, vectors)
    tol = 2 * rounding.jacobian_transpose_bound(X, Z, K, activation, bias, vectors)
    assert np.all(np.abs(out - want) <= tol)


def test_jacobian_transpose_stored_pre_subset_and_shared_residual():
    # a subset of rows with stored pre-activations moves only those rows; with one residual
    # shared by every neuron it is the masked-row step with penalty 0, the same arithmetic
    n, d, K, B = 150, 3, 2, 7
    X, Z, Zt, y = _network(n, d, K, B, True, "square")
    act = activation_code("tanh")
    rows = np.flatnonzero(np.random.default_rng(2).random(n) < 0.6)
    pre = np.empty((rows.size, B))
    f = np.empty((K, B))
    data = _data(Z, Zt, y, K, True, act)
    core._forward(X, data, Rows(rows, rows.size), Weights(1.5, 0.3, rows.size), pre, f)
    r = np.empty_like(f)
    core._loss_derivative(0, f, y, r)
    shared = np.broadcast_to(r, (n, K, B)).copy()
    kept = Kept(pre, NO_SIGNS, np.arange(rows.size))
    got, want = X.copy(), X.copy()
    second_order._jacobian_transpose(got, data, Rows(rows, rows.size), 0.7, shared, kept, got)
    core._backward_update(want, data, Rows(rows, rows.size), Update(0.7, 0.0, r), kept, want)
    dropped = np.setdiff1d(np.arange(n), rows)
    assert np.array_equal(got[dropped], X[dropped])
    # the same per-row arithmetic; allow the bound of both products and of the final
    # subtraction x − 0.7 g (one rounding of each of |x| and |0.7 g|)
    bound = rounding.jacobian_transpose_bound(X, Z, K, "tanh", True, shared)
    magnitude = np.abs(X) + 0.7 * np.abs(reference.jacobian_transpose_outputs(
        X, Z, K, "tanh", True, shared))
    assert np.all(np.abs(got - want) <= 2 * (0.7 * bound + 2 * U * magnitude))


CASES = [  # (loss, K, bias, activation)
    ("square", 1, False, "tanh"), ("square", 3, True, "softplus"),
    ("logistic", 1, True, "sigmoid"), ("logistic", 1, False, "tanh"),
    ("softmax", 4, False, "tanh"), ("softmax", 3, True, "softplus"),
]


@pytest.mark.parametrize("loss,K,bias,activation", CASES)
def test_hvp_matches_reference_formula(loss, K, bias, activation):
    n, d, B = 70, 5, 11
    X, Z, Zt, y = _network(n, d, K, B, bias, loss)
    V = np.random.default_rng(4).standard_normal(X.shape)
    scale, penalty = 0.7, 0.3
    got = _hvp(X, V, Z, Zt, y, K, bias, activation_code(activation), scale, penalty, loss)
    net = (Z, y, K, scale, penalty, activation, bias, loss)
    want = reference.hessian_vector_product(X, V, *net)
    assert np.all(np.abs(got - want) <= 2 * rounding.hvp_bound(X, V, *net))


@pytest.mark.parametrize("loss,K,bias,activation", CASES)
def test_hvp_matches_finite_differences_of_the_gradient(loss, K, bias, activation):
    n, d, B = 70, 5, 11
    X, Z, Zt, y = _network(n, d, K, B, bias, loss, seed=1)
    V = np.random.default_rng(5).standard_normal(X.shape)
    V /= np.abs(V).max()
    act = activation_code(activation)
    scale, penalty = 0.7, 0.3

    def fd(h):
        return (_gradient(X + h * V, Z, Zt, y, K, bias, act, scale, penalty, loss)
                - _gradient(X - h * V, Z, Zt, y, K, bias, act, scale, penalty, loss)) / (2 * h)

    got = _hvp(X, V, Z, Zt, y, K, bias, act, scale, penalty, loss)
    h = 1e-4  # balances the h² truncation against the worst-case rounding bound / h
    fd_h, fd_2h = fd(h), fd(2 * h)
    # FD(h) = HV + (h²/6) D³g[V, V, V] + O(h⁴); FD(2h) − FD(h) = 3 (h²/6) D³g[…] + O(h⁴)
    # gives the truncation error. Rounding: each gradient is off by at most its bound, and
    # rounding X ± hV (by ≤ u|X + hV|) moves it by at most u |H| |X| (the Hessian's terms
    # against |X|, i.e. the HVP bound along |X| over S u); all divided by 2h.
    net = (Z, y, K, scale, penalty, activation, bias, loss)
    S = B + n + d + K + 12
    shift = rounding.hvp_bound(X, np.abs(X) + h, *net) / S
    error = (2 * rounding.gradient_bound(X, *net) + 2 * shift) / (2 * h)
    truncation = np.abs(fd_2h - fd_h) / 3
    # factor 2: the truncation estimate carries the rounding of FD(h) and FD(2h)
    # (≤ 1.5× ``error``) and the neglected O(h⁴)
    tol = 2 * (truncation + 2.5 * error)
    assert np.all(np.abs(got - fd_h) <= tol)
    # the check resolves relative errors of 1e-5 of the product
    assert np.max(tol) < 1e-5 * np.abs(got).max()


@pytest.mark.parametrize("loss,K,bias,activation", CASES[::2])
def test_gradient_is_that_of_the_penalized_loss(loss, K, bias, activation):
    # the loss whose Hessian the HVP kernel computes: core gradient = reference formula
    # (to rounding) and = central differences of the reference loss (to the FD model)
    n, d, B = 6, 3, 8
    X, Z, Zt, y = _network(n, d, K, B, bias, loss, seed=2)
    scale, penalty = 0.7, 0.3
    net = (Z, y, K, scale, penalty, activation, bias, loss)
    got = _gradient(X, Z, Zt, y, K, bias, activation_code(activation), scale, penalty, loss)
    want = reference.penalized_gradient(X, *net)
    assert np.all(np.abs(got - want) <= 2 * rounding.gradient_bound(X, *net))
    h = 1e-5
    basis = np.eye(X.size).reshape(X.size, *X.shape)

    def fd(step):
        return np.array([(reference.penalized_loss(X + step * e, *net)
                          - reference.penalized_loss(X - step * e, *net)) / (2 * step)
                         for e in basis]).reshape(X.shape)

    fd_h, fd_2h = fd(h), fd(2 * h)
    # truncation as in the HVP test; rounding: each loss value is off by its bound, and
    # rounding x ± h (by ≤ u(|x| + h)) moves L by ≤ |∂L/∂x| u (|x| + h)
    error = (2 * rounding.loss_bound(X, *net) + 2 * U * np.abs(want) * (np.abs(X) + h)) / (2 * h)
    assert np.all(np.abs(got - fd_h) <= 2 * (np.abs(fd_2h - fd_h) / 3 + 2.5 * error))


def test_hvp_does_not_depend_on_thread_count():
    n, d, K, B = 200, 4, 3, 13  # four blocks
    X, Z, Zt, y = _network(n, d, K, B, True, "softmax")
    V = np.random.default_rng(6).standard_normal(X.shape)
    act = activation_code("tanh")
    threads = numba.get_num_threads()
    try:
        results = []
        for count in sorted({1, threads}):
            numba.set_num_threads(count)
            results.append(_hvp(X, V, Z, Zt, y, K, True, act, 0.5, 0.2, "softmax"))
    finally:
        numba.set_num_threads(threads)
    assert all(np.array_equal(results[0], r) for r in results)
