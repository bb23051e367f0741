"""Bad input raises ValueError naming the argument and its range."""
import numpy as np
import pytest

from meanfield_dropout.sme.alignment import alignment, random_baseline
from meanfield_dropout.sme.covariance import noise_covariance, sample_noise
from meanfield_dropout.sme.equations import simulate_dropout, simulate_sme
from meanfield_dropout.sme.hessian import modified_loss_hessian
from meanfield_dropout.sme.model import init_params, make_problem, modified_loss_gradient
from meanfield_dropout.sme.weak_order import weak_error_study
from meanfield_dropout.stats import loglog_fit

X = np.zeros((4, 2))
Y = np.zeros(4)


@pytest.mark.parametrize("p", [0.0, -0.1, 1.5])
def test_keep_prob_range(p):
    with pytest.raises(ValueError, match=r"keep_prob must be in \(0, 1\]"):
        make_problem(X, Y, 3, p)


def test_other_problem_arguments():
    with pytest.raises(ValueError, match="width must be an integer"):
        make_problem(X, Y, 0, 0.5)
    with pytest.raises(ValueError, match="output_scale must be one of"):
        make_problem(X, Y, 3, 0.5, output_scale="2")
    with pytest.raises(ValueError, match="targets has shape"):
        make_problem(X, np.zeros(5), 3, 0.5)
    with pytest.raises(ValueError, match="activation must be one of"):
        make_problem(X, Y, 3, 0.5, activation="cos")


def test_learning_rate_and_sde_step():
    prob = make_problem(X, Y, 3, 0.5)
    theta = init_params(prob)
    for lr in (0.0, -1.0):
        with pytest.raises(ValueError, match="lr must be a finite number > 0"):
            simulate_dropout(prob, theta, lr, 3)
    with pytest.raises(ValueError, match=r"sde_step must be in \(0, lr\]"):
        simulate_sme(prob, theta, 0.1, 3, sde_step=0.2)
    with pytest.raises(ValueError, match="must be an integer"):
        simulate_sme(prob, theta, 0.1, 3, sde_step=0.03)
    with pytest.raises(ValueError, match="order must be one of"):
        simulate_sme(prob, theta, 0.1, 3, order=3)


def test_shape_mismatches():
    prob = make_problem(X, Y, 3, 0.5)
    with pytest.raises(ValueError, match=r"params has shape \(5,\)"):
        modified_loss_gradient(prob, np.zeros(5))
    with pytest.raises(ValueError, match="params0 has shape"):
        simulate_dropout(prob, np.zeros(4), 0.1, 3)
    with pytest.raises(ValueError, match="covariance has shape"):
        alignment(np.eye(3), np.eye(4))
    with pytest.raises(ValueError, match="hessian must be square"):
        random_baseline(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="undefined when H or Sigma is zero"):
        random_baseline(np.eye(3), np.zeros((3, 3)))


def test_dense_size_limit():
    prob = make_problem(np.zeros((2, 100)), np.zeros(2), 50, 0.5)  # D = 50 * 101 = 5050
    theta = np.zeros(prob.n_params)
    for fn in (noise_covariance, modified_loss_hessian):
        with pytest.raises(ValueError, match=r"D = width\*\(K\+d\) <= 4000.*sample_noise"):
            fn(prob, theta)
    assert sample_noise(prob, theta, 1).shape == (1, 5050)


def test_weak_study_arguments():
    prob = make_problem(X, Y, 2, 0.5)
    theta = init_params(prob)
    with pytest.raises(ValueError, match="time / lr must be a positive integer"):
        weak_error_study(prob, theta, [0.3, 0.2], [0.5], time=1.0, progress=False)
    with pytest.raises(ValueError, match=r"keep_prob must be in \(0, 1\]"):
        weak_error_study(prob, theta, [0.5, 0.25], [1.2], time=1.0, progress=False)
    with pytest.raises(ValueError, match="distinct learning rates"):
        weak_error_study(prob, theta, [0.5, 0.5], [0.5], time=1.0, progress=False)
    with pytest.raises(ValueError, match="log-log"):
        loglog_fit([1.0, 2.0], [0.0, 1.0])
