"""Scientific checks of the SMEs (slow; run with ``pytest -m slow tests/test_sme_slow.py``)."""
import numpy as np
import pytest

from meanfield_dropout.data.images import digits_problem_data
from meanfield_dropout.sme.alignment import alignment_along_training
from meanfield_dropout.sme.model import init_params, make_problem
from meanfield_dropout.sme.weak_order import weak_error_study

pytestmark = pytest.mark.slow


def test_weak_error_slopes():
    # same tiny problem as the ``sme-order`` command defaults (n = 6, d = 2, m = 4)
    rng = np.random.default_rng(np.random.SeedSequence(0).spawn(1)[0])
    prob = make_problem(rng.standard_normal((6, 2)), rng.standard_normal(6), 4, 0.8)
    theta0 = init_params(prob, seed=0, input_weight_std=1.0, output_weight_std=1.0)
    result = weak_error_study(prob, theta0, [0.4, 0.2, 0.1, 0.05], [0.8], time=0.8,
                              repeats=2000, seed=0, progress=False)
    # the errors must stand above the Monte Carlo floor for the slopes to mean anything
    assert np.all(result.errors > result.floors)
    assert abs(result.slopes[0, 0] - 1.0) < 0.25
    assert abs(result.slopes[1, 0] - 2.0) < 0.4


def test_alignment_along_digits_training():
    x, y, *_ = digits_problem_data(300, 10, seed=0, pool=2)
    prob = make_problem(x, y, 20, 0.5)
    run = alignment_along_training(prob, init_params(prob, seed=0), 0.2, 1000, 200,
                                   n_masks=200, n_baseline=20, seed=0, progress=False)
    # theta_0 sits near the saddle at zero, where H is dominated by its indefinite
    # residual term; alignment is asserted once training has started
    assert np.all(run.alpha_exact[1:] > 0.5)
    assert np.all(run.alpha_empirical[1:] > 0.5)
    assert abs(run.baseline.mean()) < 0.05
