"""Exact identities of the SME model, checked by enumerating all 2^m masks."""
import numpy as np
import pytest

from meanfield_dropout.sme.covariance import noise_covariance
from meanfield_dropout.sme.hessian import hessian_vector_product, modified_loss_hessian
from meanfield_dropout.sme.model import (init_params, make_problem, modified_loss,
                                         modified_loss_gradient)

from .masks import mask_law

CASES = [  # (n, d, m, K, p, output_scale, activation)
    (5, 3, 6, 1, 0.7, "1", "tanh"),
    (4, 2, 5, 1, 0.3, "1/sqrt(m)", "tanh"),
    (5, 3, 5, 3, 0.6, "1", "tanh"),
    (5, 4, 6, 2, 0.9, "1/m", "softplus"),
]


def _problem(n, d, m, K, p, scale, act, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, K)) if K > 1 else rng.standard_normal(n)
    prob = make_problem(X, Y, m, p, scale, act)
    theta = init_params(prob, seed=seed + 1, output_weight_std=1.0)
    return prob, theta


def _enumerate(prob, theta):
    """Exact mean and covariance of the dropout gradient over all 2^m masks."""
    grads, weights = mask_law(prob, theta)
    mean = weights @ grads
    centred = grads - mean
    return mean, (centred * weights[:, None]).T @ centred


@pytest.mark.parametrize("case", CASES)
def test_mean_and_covariance_match_enumeration(case):
    prob, theta = _problem(*case)
    mean, cov = _enumerate(prob, theta)
    grad = modified_loss_gradient(prob, theta)
    assert np.linalg.norm(mean - grad) <= 1e-12 * np.linalg.norm(grad)
    sigma = noise_covariance(prob, theta)
    assert np.linalg.norm(sigma - cov) <= 1e-12 * np.linalg.norm(cov)


@pytest.mark.parametrize("case", CASES)
def test_gradient_and_hessian_match_finite_differences(case):
    prob, theta = _problem(*case)
    eps = 1e-6
    D = prob.n_params
    basis = np.eye(D)
    fd_grad = np.array([(modified_loss(prob, theta + eps * e)
                         - modified_loss(prob, theta - eps * e)) / (2 * eps) for e in basis])
    grad = modified_loss_gradient(prob, theta)
    assert np.allclose(fd_grad, grad, rtol=1e-6, atol=1e-8)
    fd_hess = np.array([(modified_loss_gradient(prob, theta + eps * e)
                         - modified_loss_gradient(prob, theta - eps * e)) / (2 * eps)
                        for e in basis])
    H = modified_loss_hessian(prob, theta)
    assert np.allclose(H, 0.5 * (fd_hess + fd_hess.T), rtol=1e-5, atol=1e-7)
    v = np.random.default_rng(3).standard_normal(D)
    assert np.allclose(hessian_vector_product(prob, theta, v), H @ v, rtol=1e-10, atol=1e-12)
