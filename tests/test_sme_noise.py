"""The matrix-free sampler, the exact factor and the dynamics at fixed width."""
import numpy as np
import pytest

from meanfield_dropout.sme.alignment import alignment, random_baseline
from meanfield_dropout.sme.covariance import (empirical_covariance, noise_covariance,
                                              noise_factor, noise_from_normals, sample_noise)
from meanfield_dropout.sme.equations import (DivergenceError, simulate_dropout,
                                             simulate_modified_gd, simulate_sme)
from meanfield_dropout.sme.model import init_params, make_problem


def _problem(K=1, p=0.6, scale="1", m=5, n=5, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, K)) if K > 1 else rng.standard_normal(n)
    prob = make_problem(X, Y, m, p, scale)
    return prob, init_params(prob, seed=seed + 1, input_weight_std=1.0, output_weight_std=1.0)


@pytest.mark.parametrize("K,scale", [(1, "1"), (3, "1/m")])
def test_factor_gives_sigma_and_matches_sampler(K, scale):
    prob, theta = _problem(K=K, scale=scale)
    c = prob.penalty
    A1, A2 = noise_factor(prob, theta)
    sigma = noise_covariance(prob, theta)
    assert np.allclose(c * A1 @ A1.T + c * c * A2 @ A2.T, sigma, rtol=1e-12, atol=1e-14)
    rng = np.random.default_rng(5)
    z, pairs = rng.standard_normal(prob.width), rng.standard_normal((prob.width,) * 2)
    iu = np.triu_indices(prob.width, 1)
    expected = np.sqrt(c) * A1 @ z + c * A2 @ pairs[iu]
    assert np.allclose(noise_from_normals(prob, theta, z, pairs), expected, rtol=1e-12,
                       atol=1e-14)


def test_sampler_covariance_within_sampling_error():
    prob, theta = _problem(K=2, p=0.4)
    sigma = noise_covariance(prob, theta)
    n_draws = 4000
    draws = sample_noise(prob, theta, n_draws, seed=1)
    estimate = draws.T @ draws / n_draws  # the mean is known to be zero
    # For Gaussian draws E||estimate - sigma||_F^2 = (||sigma||_F^2 + tr(sigma)^2) / n_draws;
    # four root-mean-square errors bound a deviation with probability >= 15/16 (Markov).
    rms = np.sqrt((np.sum(sigma ** 2) + np.trace(sigma) ** 2) / n_draws)
    assert np.linalg.norm(estimate - sigma) < 4 * rms
    assert abs(draws.mean(axis=0)).max() < 5 * np.sqrt(np.diag(sigma).max() / n_draws)


def test_empirical_covariance_converges_to_sigma():
    prob, theta = _problem(p=0.7)
    sigma = noise_covariance(prob, theta)
    n_masks = 4000
    emp = empirical_covariance(prob, theta, n_masks, seed=2)
    # same order as the Gaussian bound; the Bernoulli chaos has bounded fourth moments
    rms = np.sqrt((np.sum(sigma ** 2) + np.trace(sigma) ** 2) / n_masks)
    assert np.linalg.norm(emp - sigma) < 6 * rms


def test_without_dropout_all_methods_are_gd():
    prob, theta = _problem(p=1.0)
    gd = simulate_modified_gd(prob, theta, 0.05, 10)
    drop = simulate_dropout(prob, theta, 0.05, 10, n_runs=2)
    sme = simulate_sme(prob, theta, 0.05, 10, n_runs=2)
    assert np.allclose(drop.final, gd.final, atol=1e-13)
    assert np.allclose(sme.final, gd.final, atol=1e-13)
    assert np.allclose(drop.loss[0], gd.loss[0])


def test_common_random_numbers_and_time_grid():
    prob, theta = _problem(p=0.5)
    a = simulate_sme(prob, theta, 0.1, 4, sde_step=0.025, order=1, n_runs=3, seed=7)
    b = simulate_sme(prob, theta, 0.1, 4, sde_step=0.025, order=2, n_runs=3, seed=7)
    assert np.allclose(a.times, [0.0, 0.1, 0.2, 0.3, 0.4])
    # same Gaussians: the order-2 correction is O(eta) and deterministic given the noise
    diff = np.linalg.norm(a.final - b.final, axis=1)
    spread = np.linalg.norm(a.final - a.final.mean(axis=0), axis=1)
    assert np.all(diff < spread.max())


def test_divergence_reports_step():
    prob, theta = _problem(p=0.5)
    with pytest.raises(DivergenceError, match="diverged at step") as info:
        simulate_dropout(prob, theta, 1e4, 50)
    assert 1 <= info.value.step <= 50


def test_alignment_basics():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((6, 6))
    H = A @ A.T
    assert alignment(H, H) == pytest.approx(1.0)
    assert alignment(H, 2 * H) == pytest.approx(1.0)
    base = random_baseline(H, H, n_samples=5, seed=1)
    assert base.shape == (5,) and np.all(np.abs(base) <= 1.0)
