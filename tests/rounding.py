"""Rounding-error bounds for comparing two evaluations of the network formulas (tests only).

Running-error analysis (Higham, *Accuracy and Stability of Numerical Algorithms*, 2002, §3.1):
a sum of S products of rounded factors differs from its exact value by at most
S u Σ|terms| plus, to first order, Σ (factor error) × |other factors| over the terms
(u = 2⁻⁵³). Both parts are obtained from ONE evaluation of the formula on non-negative
"augmented magnitudes" M = |factor| + (factor error)/(S u), multiplied by S u. Each function
returns that bound for one evaluation, entry by entry; two codes differ by at most twice it.

The factor errors: a pre-activation u = w·z + b is off by δu ≤ (d + 2) u Σ|w_l z_l| + |b|;
σ(u) by 2u|σ| + |σ'| δu; σ'(u) by 4u + 2u|σ'| + |σ''| δu (4u absorbs the cancellation in
1 − tanh² and s(1 − s)); σ''(u) by 8u + 2u|σ''| + |σ'''| δu. A residual r (computed from f)
carries, besides its own rounding, the error of f (≤ S u scale Σ_i|φ_i|) times |∂r/∂f|.
"""
import numpy as np

from . import reference

U = np.finfo(np.float64).eps / 2


def _primitives(X, Z, K, activation, bias, S):
    d = Z.shape[1]
    w = X[:, K:K + d]
    b = X[:, K + d] if bias else np.zeros(X.shape[0])
    pre = w @ Z.T + b[:, None]
    du = (d + 2) * U * (np.abs(w) @ np.abs(Z).T + np.abs(b)[:, None])
    s, ds = (fn(pre) for fn in reference.ACT[activation])
    dds, ddds = reference.SECOND[activation](pre), reference.THIRD[activation](pre)
    scale = S * U
    return (np.abs(s) + (2 * U * np.abs(s) + np.abs(ds) * du) / scale,
            np.abs(ds) + (4 * U + 2 * U * np.abs(ds) + np.abs(dds) * du) / scale,
            np.abs(dds) + (8 * U + 2 * U * np.abs(dds) + np.abs(ddds) * du) / scale,
            s)


def _residual_magnitudes(loss, f, F, y):
    """Augmented |r| and the factor c of |∂²loss| (K, B): F = scale Σ_i |φ_i| (f's terms)."""
    B = y.shape[1]
    if loss == "square":
        return (F + np.abs(y)) / B, np.ones_like(f) / B
    if loss == "logistic":
        p = 1.0 / (1.0 + np.exp(-y * f))
        c = y * y * p * (1 - p)
        return (np.abs(y) * (1 - p) + c * F) / B, (c + c * np.abs(1 - 2 * p) * np.abs(y) * F) / B
    pi = np.exp(f - f.max(axis=0))
    pi /= pi.sum(axis=0)
    return (pi + y + pi * F.sum(axis=0)) / B, pi * (2 + F.sum(axis=0)) / B


def jacobian_transpose_bound(X, Z, K, activation, bias, vectors):
    """Bound for Dφ(x_i)ᵀ v_i with exact per-neuron vectors v (n, K, B)."""
    S = Z.shape[0] + Z.shape[1] + K + 4
    s, ds, _, _ = _primitives(X, Z, K, activation, bias, S)
    v = np.abs(vectors)
    coef = ds * np.einsum("ic,icj->ij", np.abs(X[:, :K]), v)
    out = [np.einsum("ij,icj->ic", s, v), coef @ np.abs(Z)]
    if bias:
        out.append(coef.sum(axis=1)[:, None])
    return S * U * np.concatenate(out, axis=1)


def _network_terms(X, Z, y, K, scale, activation, bias, loss, S):
    s, ds, dds, signed = _primitives(X, Z, K, activation, bias, S)
    a = np.abs(X[:, :K])
    phi = a[:, :, None] * s[:, None, :]
    f = scale * (X[:, :K, None] * signed[:, None, :]).sum(axis=0)
    F = abs(scale) * (np.abs(X[:, :K, None] * signed[:, None, :])).sum(axis=0)
    r, curvature = _residual_magnitudes(loss, f, F, y)
    return s, ds, dds, a, phi, r, curvature


def gradient_bound(X, Z, y, K, scale, penalty, activation="tanh", bias=False, loss="square"):
    """Bound for the gradient scale Dφ(x_i)ᵀ(r + penalty φ_i/B) (``penalized_gradient``)."""
    n, B, d = X.shape[0], Z.shape[0], Z.shape[1]
    S = B + n + d + K + 8
    s, ds, _, a, phi, r, _ = _network_terms(X, Z, y, K, scale, activation, bias, loss, S)
    e = r[None] + abs(penalty) / B * phi
    coef = ds * (a[:, :, None] * e).sum(axis=1)
    out = [(s[:, None, :] * e).sum(axis=2), coef @ np.abs(Z)]
    if bias:
        out.append(coef.sum(axis=1)[:, None])
    return S * U * abs(scale) * np.concatenate(out, axis=1)


def hvp_bound(X, V, Z, y, K, scale, penalty, activation="tanh", bias=False, loss="square"):
    """Bound for ∇²L V (``reference.hessian_vector_product``)."""
    n, B, d = X.shape[0], Z.shape[0], Z.shape[1]
    S = B + n + d + K + 12
    s, ds, dds, a, phi, r, curvature = _network_terms(X, Z, y, K, scale, activation, bias,
                                                      loss, S)
    alpha = np.abs(V[:, :K])
    tau = np.abs(V[:, K:K + d]) @ np.abs(Z).T + (np.abs(V[:, K + d])[:, None] if bias else 0)
    t = alpha[:, :, None] * s[:, None, :] + a[:, :, None] * (ds * tau)[:, None, :]
    df = abs(scale) * t.sum(axis=0)
    e = r[None] + abs(penalty) / B * phi
    eps = (curvature * (df + (df.sum(axis=0) if loss == "softmax" else 0)))[None] \
        + abs(penalty) / B * t
    grad_a = (s[:, None, :] * eps + (ds * tau)[:, None, :] * e).sum(axis=2)
    g = ds * ((a[:, :, None] * eps).sum(axis=1) + (alpha[:, :, None] * e).sum(axis=1)) \
        + dds * tau * (a[:, :, None] * e).sum(axis=1)
    out = [grad_a, g @ np.abs(Z)]
    if bias:
        out.append(g.sum(axis=1)[:, None])
    return S * U * abs(scale) * np.concatenate(out, axis=1)


def loss_bound(X, Z, y, K, scale, penalty, activation="tanh", bias=False, loss="square"):
    """Bound for the penalised loss value (``reference.penalized_loss``).

    Its terms are non-negative (their own rounding ≤ S u L), and the error of f's sums
    (≤ S u scale Σ_i |φ_ij|) moves L by Σ_j |∂L/∂f_j| times it.
    """
    n, B, d = X.shape[0], Z.shape[0], Z.shape[1]
    S = B + n + d + K + 8
    w = X[:, K:K + d]
    pre = w @ Z.T + (X[:, K + d][:, None] if bias else 0.0)
    s = reference.ACT[activation][0](pre)
    F = abs(scale) * np.abs(X[:, :K, None] * s[:, None, :]).sum(axis=0)
    r, _ = reference._loss_terms(loss, scale * (X[:, :K].T @ s), y)
    value = reference.penalized_loss(X, Z, y, K, scale, penalty, activation, bias, loss)
    return S * U * (value + np.sum(np.abs(r) * F))
