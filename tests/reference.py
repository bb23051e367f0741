"""Slow, obvious NumPy reference of every update rule, to check the Numba engine against.

Written straight from the formulas in ``meanfield_dropout.engine`` with no shared code:
particles X (n, p) = (a, w[, b]); masks M, M' ∈ {0, 1/q} given as booleans.
"""
import numpy as np

ACT = {
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float)),
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "softplus": (lambda x: np.logaddexp(0.0, x), lambda x: 1.0 / (1.0 + np.exp(-x))),
    "sigmoid": (lambda x: 1.0 / (1.0 + np.exp(-x)),
                lambda x: np.exp(-x) / (1.0 + np.exp(-x)) ** 2),
}


def split(X, dim, bias):
    a = X[:, 0]
    w = X[:, 1:1 + dim]
    b = X[:, 1 + dim] if bias else np.zeros(X.shape[0])
    return a, w, b


def features(X, Z, activation, bias):
    """φ(x_i, z_j) (n, m) and σ'(pre) (n, m)."""
    a, w, b = split(X, Z.shape[1], bias)
    pre = w @ Z.T + b[:, None]
    sig, dsig = ACT[activation]
    return a[:, None] * sig(pre), sig(pre), dsig(pre)


def loss_derivative(loss, f, y):
    if loss == "square":
        return (f - y) / y.size
    return -y / (1.0 + np.exp(y * f)) / y.size


def loss_value(loss, f, y):
    if loss == "square":
        return 0.5 * np.mean((f - y) ** 2)
    return np.mean(np.logaddexp(0.0, -y * f))


def jacobian_transpose(X, Z, activation, bias, vectors):
    """Row i: Dφ(x_i)ᵀ v_i for per-neuron data vectors ``vectors`` (n, m)."""
    a, w, b = split(X, Z.shape[1], bias)
    _, s, ds = features(X, Z, activation, bias)
    out = [np.sum(s * vectors, axis=1)]
    grad_pre = a[:, None] * ds * vectors
    out.extend((grad_pre @ Z).T)
    if bias:
        out.append(grad_pre.sum(axis=1))
    return np.stack(out, axis=1)


def step(X, Z, y, variant, mask, fwd_mask, keep_prob, lr, scale, penalty,
         activation="relu", bias=False, loss="square"):
    """One update of ``variant`` with masks M = mask/q, M' = fwd_mask/q (booleans)."""
    M = mask / keep_prob
    Mf = fwd_mask / keep_prob
    ones = np.ones(X.shape[0])
    forward, backward = {"gd": (ones, ones), "dropout": (M, M), "ram": (ones, M),
                         "pn": (Mf, ones), "pn_ram": (Mf, M),
                         "penalized": (ones, ones)}[variant]
    phi, _, _ = features(X, Z, activation, bias)
    f = scale * forward @ phi
    r = loss_derivative(loss, f, y)
    vectors = np.tile(r, (X.shape[0], 1))
    if variant == "penalized":
        vectors = vectors + penalty * phi / y.size
    return X - lr * backward[:, None] * jacobian_transpose(X, Z, activation, bias, vectors)


def full_loss(X, Z, y, scale, activation="relu", bias=False, loss="square"):
    phi, _, _ = features(X, Z, activation, bias)
    return loss_value(loss, scale * phi.sum(axis=0), y)
