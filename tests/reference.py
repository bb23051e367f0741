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


# ----------------------------------------------------------------------------------------
# K outputs, a per-neuron penalty and second derivatives (the core's SME and sharpness
# kernels). Particles X (n, K + d [+ 1]) = (a, w[, b]); data Z (B, d); outputs (K, B).

SECOND = {
    "relu": lambda x: np.zeros_like(x),
    "tanh": lambda x: -2.0 * np.tanh(x) * (1.0 - np.tanh(x) ** 2),
    "softplus": lambda x: np.exp(-x) / (1.0 + np.exp(-x)) ** 2,
    "sigmoid": lambda x: (np.exp(-x) * (np.exp(-x) - 1.0)) / (1.0 + np.exp(-x)) ** 3,
}


def _parts(X, K, d, bias):
    a, w = X[:, :K], X[:, K:K + d]
    b = X[:, K + d] if bias else np.zeros(X.shape[0])
    return a, w, b


def _loss_terms(loss, f, y):
    """r = ∂(mean loss)/∂f (K, B) and a function df ↦ ∂²(mean loss)/∂f² df."""
    B = f.shape[1]
    if loss == "square":
        return (f - y) / B, lambda df: df / B
    if loss == "logistic":
        p = 1.0 / (1.0 + np.exp(-y * f))
        return -y * (1.0 - p) / B, lambda df: y * y * p * (1.0 - p) * df / B
    pi = np.exp(f - f.max(axis=0))
    pi /= pi.sum(axis=0)
    return (pi - y) / B, lambda df: pi * (df - (pi * df).sum(axis=0)) / B


def penalized_loss(X, Z, y, K, scale, penalty, activation="tanh", bias=False, loss="square"):
    """loss(scale Σ_i φ(x_i)) + (penalty · scale / 2B) Σ_ij |φ(x_i, z_j)|², φ = a σ(w·z + b)."""
    a, w, b = _parts(X, K, Z.shape[1], bias)
    s = ACT[activation][0](w @ Z.T + b[:, None])
    phi = a[:, :, None] * s[:, None, :]
    f = scale * phi.sum(axis=0)
    if loss == "square":
        value = 0.5 * np.sum((f - y) ** 2) / y.shape[1]
    elif loss == "logistic":
        value = np.mean(np.logaddexp(0.0, -y * f))
    else:
        top = f.max(axis=0)
        value = np.mean(top + np.log(np.exp(f - top).sum(axis=0)) - (y * f).sum(axis=0))
    return value + 0.5 * penalty * scale * np.sum(phi ** 2) / y.shape[1]


def jacobian_transpose_outputs(X, Z, K, activation, bias, vectors):
    """Row i: Dφ(x_i)ᵀ v_i for per-neuron vectors ``vectors`` (n, K, B), K outputs."""
    a, w, b = _parts(X, K, Z.shape[1], bias)
    pre = w @ Z.T + b[:, None]
    s, ds = ACT[activation][0](pre), ACT[activation][1](pre)
    grad_pre = ds * np.einsum("ic,icj->ij", a, vectors)
    out = [np.einsum("ij,icj->ic", s, vectors), grad_pre @ Z]
    if bias:
        out.append(grad_pre.sum(axis=1)[:, None])
    return np.concatenate(out, axis=1)


THIRD = {
    "relu": lambda x: np.zeros_like(x),
    "tanh": lambda x: (1.0 - np.tanh(x) ** 2) * (6.0 * np.tanh(x) ** 2 - 2.0),
    "softplus": lambda x: SECOND["sigmoid"](x),
    "sigmoid": lambda x: (lambda s: s * (1 - s) * (1 - 6 * s + 6 * s * s))(
        1.0 / (1.0 + np.exp(-x))),
}


def hessian_vector_product(X, V, Z, y, K, scale, penalty, activation="tanh", bias=False,
                           loss="square"):
    """∇²L(X) V of :func:`penalized_loss`, by the forward-mode formula.

    With τ = β·z + γ, t = α σ + a σ' τ (= Dφ V), δf = scale Σ_i t_i, e_i = r + penalty φ_i/B
    and ε_i = ∂²loss δf + penalty t_i/B: a-part scale Σ_j (σ ε + σ' τ e), w-part
    scale Σ_j g_j z_j and b-part scale Σ_j g_j, g = σ'(a·ε + α·e) + σ'' τ (a·e).
    """
    d = Z.shape[1]
    a, w, b = _parts(X, K, d, bias)
    alpha, beta, gamma = _parts(V, K, d, bias)
    pre = w @ Z.T + b[:, None]
    s, ds, dds = ACT[activation][0](pre), ACT[activation][1](pre), SECOND[activation](pre)
    tau = beta @ Z.T + gamma[:, None]
    phi = a[:, :, None] * s[:, None, :]
    t = alpha[:, :, None] * s[:, None, :] + a[:, :, None] * (ds * tau)[:, None, :]
    r, curvature = _loss_terms(loss, scale * phi.sum(axis=0), y)
    B = y.shape[1]
    e = r[None] + penalty / B * phi
    eps = curvature(scale * t.sum(axis=0))[None] + penalty / B * t
    grad_a = (s[:, None, :] * eps + (ds * tau)[:, None, :] * e).sum(axis=2)
    g = ds * ((a[:, :, None] * eps).sum(axis=1) + (alpha[:, :, None] * e).sum(axis=1)) \
        + dds * tau * (a[:, :, None] * e).sum(axis=1)
    out = [grad_a, g @ Z]
    if bias:
        out.append(g.sum(axis=1)[:, None])
    return scale * np.concatenate(out, axis=1)


def penalized_gradient(X, Z, y, K, scale, penalty, activation="tanh", bias=False,
                       loss="square"):
    """∇L(X) = scale Dφ(x_i)ᵀ(r + penalty φ_i/B) of :func:`penalized_loss` (X's layout)."""
    a, w, b = _parts(X, K, Z.shape[1], bias)
    pre = w @ Z.T + b[:, None]
    s, ds = ACT[activation][0](pre), ACT[activation][1](pre)
    phi = a[:, :, None] * s[:, None, :]
    r, _ = _loss_terms(loss, scale * phi.sum(axis=0), y)
    e = r[None] + penalty / y.shape[1] * phi
    grad_pre = ds * (a[:, :, None] * e).sum(axis=1)
    out = [(s[:, None, :] * e).sum(axis=2), grad_pre @ Z]
    if bias:
        out.append(grad_pre.sum(axis=1)[:, None])
    return scale * np.concatenate(out, axis=1)


def sme_hvp(X, Y, blocks, K, kappa, activation, c, direction):
    """H v of the SME's modified loss L_S in forward mode, written out per block in NumPy.

    Independent of the core's Hessian–vector product (which ``meanfield_dropout.sme.hessian``
    uses): X (n, d), Y (n, K), blocks (m, K + d), c = (1 − p)/p.
    """
    pre = X @ blocks[:, K:].T
    s, ds = ACT[activation][0](pre), ACT[activation][1](pre)
    d2s = SECOND[activation](pre)
    n = X.shape[0]
    A, alpha = blocks[:, :K], direction[:, :K]
    res = kappa * s @ A - Y
    V = res[:, None, :] + c * kappa * A[None] * s[:, :, None]          # (n, m, K)
    t = X @ direction[:, K:].T                                          # (n, m)
    dphi = kappa * (alpha[None] * s[:, :, None] + A[None] * (ds * t)[:, :, None])
    de = dphi.sum(axis=1)
    dv = de[:, None, :] + c * dphi
    out_a = kappa / n * ((ds * t)[:, :, None] * V + s[:, :, None] * dv).sum(axis=0)
    coef = d2s * t * (A[None] * V).sum(axis=2) + ds * ((alpha[None] * V).sum(axis=2)
                                                       + (A[None] * dv).sum(axis=2))
    return np.concatenate([out_a, kappa / n * coef.T @ X], axis=1)


def sme_hessian(X, Y, blocks, K, kappa, activation, c):
    """Dense Hessian of L_S written out in NumPy (Gauss-Newton + block-diagonal terms).

    H = (1/n) JᵀJ + (c/n) blockdiag_k(J_kᵀ J_k) + (1/n) blockdiag_k(Σ_i Σ_c V_ik^c ∇²φ^c_{k,i}).
    """
    pre = X @ blocks[:, K:].T
    s, ds = ACT[activation][0](pre), ACT[activation][1](pre)
    d2s = SECOND[activation](pre)
    n, d = X.shape
    m, P = blocks.shape
    A = blocks[:, :K]
    res = kappa * s @ A - Y
    V = res[:, None, :] + c * kappa * A[None] * s[:, :, None]
    J = np.zeros((n, K, m, P))
    for c_out in range(K):
        J[:, c_out, :, c_out] = kappa * s
    J[:, :, :, K:] = kappa * (ds[:, None, :] * A.T[None])[..., None] * X[:, None, None, :]
    J = J.reshape(n * K, m * P)
    H = J.T @ J / n
    for k in range(m):
        Jk = J[:, k * P:(k + 1) * P]
        block = c / n * Jk.T @ Jk
        g = kappa / n * (ds[:, k, None] * V[:, k]).T @ X             # (K, d)
        block[:K, K:] += g
        block[K:, :K] += g.T
        g2 = kappa / n * d2s[:, k] * (A[k][None] * V[:, k]).sum(axis=1)
        block[K:, K:] += (X * g2[:, None]).T @ X
        H[k * P:(k + 1) * P, k * P:(k + 1) * P] += block
    return H


def step_outputs(X, Z, y, K, variant, mask, fwd_mask, keep_prob, lr, scale, penalty=0.0,
                 activation="relu", bias=False, loss="softmax"):
    """One update of ``variant`` for a network with K outputs; targets y (K, B).

    The masks act on whole neurons (one mask entry per hidden unit, shared by the K outputs).
    """
    M = mask / keep_prob
    Mf = fwd_mask / keep_prob
    ones = np.ones(X.shape[0])
    forward, backward = {"gd": (ones, ones), "dropout": (M, M), "ram": (ones, M),
                         "pn": (Mf, ones), "pn_ram": (Mf, M),
                         "penalized": (ones, ones)}[variant]
    a, w, b = _parts(X, K, Z.shape[1], bias)
    s = ACT[activation][0](w @ Z.T + b[:, None])
    phi = a[:, :, None] * s[:, None, :]                          # (n, K, B)
    f = scale * np.einsum("i,icj->cj", forward, phi)
    r, _ = _loss_terms(loss, f, y)
    vectors = np.broadcast_to(r, phi.shape)
    if variant == "penalized":
        vectors = vectors + penalty * phi / y.shape[1]
    return X - lr * backward[:, None] * jacobian_transpose_outputs(X, Z, K, activation, bias,
                                                                   vectors)
