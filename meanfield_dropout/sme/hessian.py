"""Exact Hessian of the modified loss L_S and Hessian-vector products.

With V_ik = e_i + c phi_{k,i} (K-vectors) and J_{k,i} = d phi_{k,i} / d q_k,

    H = (1/n) sum_i J_i^T J_i + (c/n) blockdiag_k(sum_i J_{k,i}^T J_{k,i})
        + (1/n) blockdiag_k(sum_i sum_c V_ik^c grad^2 phi^c_{k,i}),

where J_i = [J_{1,i}, ..., J_{m,i}] is the Jacobian of f(x_i) (``shared/theory/sme.md``
section 2.6, here for K outputs). The product H v is the forward-mode derivative of grad L_S
along v and costs about two gradients.
"""
import numpy as np
from numba import njit

from .._validate import check_array
from .covariance import MAX_DENSE_PARAMS, check_dense_size
from .model import _activations2, _drift_coefficients, _output


@njit(cache=True)
def _hvp(X, Y, blocks, K, kappa, code, c_pen, direction):
    """H v as (m, P) blocks for v given as (m, P) blocks (alpha_k, beta_k)."""
    s, ds, d2s = _activations2(X, blocks, K, code)
    n, m = s.shape
    res = _output(s, blocks, K, kappa, np.ones(m)) - Y
    V = _drift_coefficients(s, blocks, K, kappa, c_pen, res)
    t = np.dot(X, np.ascontiguousarray(direction[:, K:]).T)  # t_ik = beta_k . x_i
    dphi = np.empty((n, m, K))
    de = np.zeros((n, K))
    for i in range(n):
        for r in range(m):
            for c in range(K):
                dphi[i, r, c] = kappa * (direction[r, c] * s[i, r]
                                         + blocks[r, c] * ds[i, r] * t[i, r])
                de[i, c] += dphi[i, r, c]
    out = np.empty((m, blocks.shape[1]))
    coef = np.empty((n, m))
    scale = kappa / n
    for k in range(m):
        for c in range(K):
            acc = 0.0
            for i in range(n):
                dv = de[i, c] + c_pen * dphi[i, k, c]
                acc += ds[i, k] * t[i, k] * V[i, k, c] + s[i, k] * dv
            out[k, c] = scale * acc
        for i in range(n):
            a_v = 0.0
            alpha_v = 0.0
            a_dv = 0.0
            for c in range(K):
                dv = de[i, c] + c_pen * dphi[i, k, c]
                a_v += blocks[k, c] * V[i, k, c]
                alpha_v += direction[k, c] * V[i, k, c]
                a_dv += blocks[k, c] * dv
            coef[i, k] = d2s[i, k] * t[i, k] * a_v + ds[i, k] * (alpha_v + a_dv)
    out[:, K:] = scale * np.dot(coef.T, X)
    return out


@njit(cache=True)
def _dense_hessian(X, Y, blocks, K, kappa, code, c_pen):
    """Exact Hessian of L_S as a dense (D, D) array."""
    s, ds, d2s = _activations2(X, blocks, K, code)
    n, m = s.shape
    d = X.shape[1]
    P = blocks.shape[1]
    res = _output(s, blocks, K, kappa, np.ones(m)) - Y
    V = _drift_coefficients(s, blocks, K, kappa, c_pen, res)
    # Jacobian of f: row (i, c), column block k = (kappa s_ik e_c, kappa ds_ik a_kc x_i)
    J = np.zeros((n * K, m * P))
    for i in range(n):
        for c in range(K):
            row = i * K + c
            for k in range(m):
                J[row, k * P + c] = kappa * s[i, k]
                g = kappa * ds[i, k] * blocks[k, c]
                for j in range(d):
                    J[row, k * P + K + j] = g * X[i, j]
    H = np.dot(J.T, J) / n
    for k in range(m):
        Jk = np.ascontiguousarray(J[:, k * P:(k + 1) * P])
        block = c_pen / n * np.dot(Jk.T, Jk)
        # second-order term: (a_c, w) entries kappa ds V^c x; (w, w) kappa d2s (a . V) x x^T
        for i in range(n):
            a_v = 0.0
            for c in range(K):
                a_v += blocks[k, c] * V[i, k, c]
                g = kappa * ds[i, k] * V[i, k, c] / n
                for j in range(d):
                    block[c, K + j] += g * X[i, j]
                    block[K + j, c] += g * X[i, j]
            g2 = kappa * d2s[i, k] * a_v / n
            for j in range(d):
                for l in range(d):
                    block[K + j, K + l] += g2 * X[i, j] * X[i, l]
        H[k * P:(k + 1) * P, k * P:(k + 1) * P] += block
    return H


def hessian_vector_product(problem, params, vector):
    """Exact product H v of the Hessian of L_S at theta with a vector (forward mode).

    Parameters
    ----------
    problem : DropoutProblem
    params, vector : array_like, shape (D,)

    Returns
    -------
    ndarray, shape (D,)
    """
    blocks = problem.blocks(params)
    direction = problem.blocks(check_array(vector, "vector", 1, shape=(problem.n_params,)),
                               "vector")
    return _hvp(problem.inputs, problem.targets, blocks, problem.output_dim, problem.kappa,
                problem.code, problem.penalty, direction).ravel()


def modified_loss_hessian(problem, params, max_params=MAX_DENSE_PARAMS):
    """Exact Hessian of L_S at theta as a dense symmetric (D, D) matrix.

    Refuses (``ValueError``) when D exceeds ``max_params``; use
    :func:`hessian_vector_product` then.
    """
    check_dense_size(problem, max_params)
    blocks = problem.blocks(params)
    H = _dense_hessian(problem.inputs, problem.targets, blocks, problem.output_dim,
                       problem.kappa, problem.code, problem.penalty)
    return 0.5 * (H + H.T)
