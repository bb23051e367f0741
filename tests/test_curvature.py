"""Curvature diagnostics: Hessian–vector products, Lanczos sharpness, batch sharpness; and the
engine with K outputs (softmax) against the NumPy reference."""
import itertools
import math

import numpy as np
import pytest

from meanfield_dropout import init_particles, simulate
from meanfield_dropout.curvature import (batch_sharpness, batch_sharpness_terms,
                                         hessian_vector_product, loss_gradient, sharpness)
from meanfield_dropout.data.images import one_hot
from meanfield_dropout.engine import VARIANTS
from meanfield_dropout.noise import ExplicitNoise

from . import reference


def problem(loss, width=5, dim=3, points=7, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((points, dim))
    outputs = 3 if loss == "softmax" else 1
    if loss == "softmax":
        y = one_hot(rng.integers(0, 3, points), 3)
    elif loss == "logistic":
        y = np.where(rng.random(points) < 0.5, 1.0, -1.0)
    else:
        y = rng.standard_normal(points)
    X = init_particles(width, dim, seed=seed + 1, bias=bias, outputs=outputs)
    X[:, outputs:] *= 2.0
    return X, Z, y


def engine_gradient(X, Z, y, loss, activation, bias):
    """∇L from one gd step of the engine: X − τ·n·∇L (mean-field scaling), τ = 1."""
    stepped = simulate(Z, y, initial=X, master_lr=1.0, steps=1, variants=("gd",), loss=loss,
                       activation=activation, bias=bias, progress=False).final["gd"]
    return (X - stepped) / X.shape[0]


@pytest.mark.parametrize("loss,activation", [("square", "tanh"), ("logistic", "softplus"),
                                             ("softmax", "tanh"), ("logistic", "relu")])
def test_hvp_matches_central_differences_of_the_engine_gradient(loss, activation):
    X, Z, y = problem(loss)
    net = dict(loss=loss, activation=activation, bias=True)
    np.testing.assert_allclose(loss_gradient(X, Z, y, **net),
                               engine_gradient(X, Z, y, loss, activation, True),
                               rtol=1e-10, atol=1e-14)
    V = np.random.default_rng(9).standard_normal(X.shape)
    eps = 1e-5
    numeric = (engine_gradient(X + eps * V, Z, y, loss, activation, True)
               - engine_gradient(X - eps * V, Z, y, loss, activation, True)) / (2 * eps)
    got = hessian_vector_product(X, Z, y, V, **net)
    np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-9 * np.abs(got).max())
    want = reference.hessian_vector_product(X, V, Z, np.atleast_2d(y.T), X.shape[1] - 4,
                                            1.0 / X.shape[0], 0.0, activation, True, loss)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-15)


def dense_hessian(X, Z, y, **net):
    columns = []
    for k in range(X.size):
        e = np.zeros(X.size)
        e[k] = 1.0
        columns.append(hessian_vector_product(X, Z, y, e.reshape(X.shape), **net).ravel())
    return np.array(columns).T


@pytest.mark.parametrize("loss,activation", [("square", "tanh"), ("logistic", "relu"),
                                             ("softmax", "softplus")])
def test_lanczos_matches_dense_eigvalsh(loss, activation):
    X, Z, y = problem(loss, width=4, dim=2, points=9)
    net = dict(loss=loss, activation=activation, bias=True)
    H = dense_hessian(X, Z, y, **net)
    np.testing.assert_allclose(H, H.T, rtol=0, atol=1e-13 * np.abs(H).max())
    top = np.linalg.eigvalsh(H)[-1]
    found = sharpness(X, Z, y, iterations=X.size, tol=1e-12, seed=1, **net)
    assert found.points == 9 and found.iterations <= X.size
    assert abs(found.value - top) <= 1e-8 * abs(top)
    v = found.vector.ravel()
    np.testing.assert_allclose(H @ v, top * v, atol=1e-6 * abs(top))
    # warm start from the eigenvector: converged after one product
    again = sharpness(X, Z, y, iterations=5, tol=1e-6, start=found.vector, **net)
    assert again.converged and again.iterations == 1 and abs(again.value - top) < 1e-9 * top


def test_sharpness_stops_on_its_residual_and_subsamples():
    X, Z, y = problem("logistic", width=30, dim=4, points=40)
    net = dict(loss="logistic", activation="tanh", bias=True)
    loose = sharpness(X, Z, y, iterations=60, tol=1e-2, **net)
    assert loose.converged and loose.residual <= 1e-2 * abs(loose.value)
    capped = sharpness(X, Z, y, iterations=2, tol=1e-14, **net)
    assert capped.iterations == 2 and not capped.converged
    sub = sharpness(X, Z, y, iterations=60, tol=1e-8, points=25, seed=3, **net)
    assert sub.points == 25 and sub.converged
    rows = np.sort(np.random.default_rng(np.random.SeedSequence(3).spawn(2)[0])
                   .choice(40, 25, replace=False))
    top = np.linalg.eigvalsh(dense_hessian(X, Z[rows], y[rows], **net))[-1]
    assert abs(sub.value - top) <= 1e-7 * top
    with pytest.raises(ValueError, match="points must be an integer in"):
        sharpness(X, Z, y, points=41, **net)


def numpy_ratio(X, Z, y, K, scale, activation, loss):
    """gᵀHg/‖g‖² of the batch loss, from the reference's gradient and HVP."""
    yk = np.atleast_2d(y.T) if K > 1 else y[None, :]
    g = reference.penalized_gradient(X, Z, yk, K, scale, 0.0, activation, False, loss)
    Hg = reference.hessian_vector_product(X, g, Z, yk, K, scale, 0.0, activation, False, loss)
    return float(np.sum(g * Hg) / np.sum(g * g))


@pytest.mark.parametrize("loss", ["logistic", "softmax"])
def test_batch_sharpness_is_unbiased_by_enumeration(loss):
    """Every (batch, mask) of a tiny problem: per-draw values against NumPy, then the Monte
    Carlo mean against the exact expectation over batches and masks."""
    n, m, B, q = 3, 5, 2, 0.6
    X, Z, y = problem(loss, width=n, dim=2, points=m, bias=False, seed=4)
    K = 3 if loss == "softmax" else 1
    net = dict(loss=loss, activation="tanh", bias=False)
    batches = np.array(list(itertools.combinations(range(m), B)))
    masks = np.array(list(itertools.product([False, True], repeat=n)))
    exact_plain = batch_sharpness_terms(X, Z, y, batches, **net)
    for b, value in zip(batches, exact_plain):
        assert value == pytest.approx(numpy_ratio(X, Z[b], y[b], K, 1 / n, "tanh", loss),
                                      rel=1e-10)
    pairs = [(b, mk) for b in batches for mk in masks]
    values = batch_sharpness_terms(X, Z, y, np.array([b for b, _ in pairs]),
                                   np.array([mk for _, mk in pairs]), q, **net)
    weights = np.array([q ** mk.sum() * (1 - q) ** (n - mk.sum()) / len(batches)
                        for _, mk in pairs])
    for (b, mk), value in zip(pairs, values):
        want = numpy_ratio(X[mk], Z[b], y[b], K, 1 / (n * q), "tanh", loss) if mk.any() else 0
        assert value == pytest.approx(want, rel=1e-10, abs=1e-300)
    exact_masked = float(weights @ values)
    for keep, exact in ((None, exact_plain.mean()), (q, exact_masked)):
        est = batch_sharpness(X, Z, y, batch_size=B, draws=4000, keep_prob=keep, seed=7, **net)
        assert est.draws == 4000 and est.keep_prob == (keep or 1.0)
        assert abs(est.mean - exact) <= 4 * est.stderr
        assert est.stderr == pytest.approx(est.values.std(ddof=1) / math.sqrt(4000))


def test_curvature_argument_errors():
    X, Z, y = problem("logistic")
    with pytest.raises(ValueError, match="direction"):
        hessian_vector_product(X, Z, y, np.zeros((2, 2)), loss="logistic", bias=True)
    with pytest.raises(ValueError, match="batch_size"):
        batch_sharpness(X, Z, y, batch_size=8, loss="logistic", bias=True)
    with pytest.raises(ValueError, match="keep_prob"):
        batch_sharpness(X, Z, y, batch_size=2, keep_prob=1.5, loss="logistic", bias=True)
    with pytest.raises(ValueError, match="batches"):
        batch_sharpness_terms(X, Z, y, np.array([[0, 7]]), loss="logistic", bias=True)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("batch", [None, 4])
def test_engine_with_ten_softmax_outputs_matches_reference(variant, batch):
    """K = 10 outputs, softmax cross-entropy, one mask entry per hidden unit."""
    rng = np.random.default_rng(2)
    n, d, m, K, steps, q, lr, penalty = 40, 3, 9, 10, 3, 0.6, 0.4, 0.05
    Z = rng.standard_normal((m, d))
    y = one_hot(rng.integers(0, K, m), K)
    X = init_particles(n, d, seed=3, outputs=K, bias=True)
    masks = rng.random((steps, n)) < q
    fwd = rng.random((steps, n)) < q
    batches = None if batch is None else \
        np.stack([rng.choice(m, batch, replace=False) for _ in range(steps)])
    got = simulate(Z, y, initial=X, master_lr=lr, steps=steps, keep_prob=q,
                   variants=(variant,), loss="softmax", activation="tanh", bias=True,
                   penalty=penalty if variant == "penalized" else None,
                   noise=ExplicitNoise(masks, fwd, batches), progress=False).final[variant]
    want = X
    for k in range(steps):
        idx = slice(None) if batch is None else batches[k]
        want = reference.step_outputs(want, Z[idx], y[idx].T, K, variant, masks[k], fwd[k], q,
                                      lr, 1.0 / n, penalty, "tanh", True, "softmax")
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
