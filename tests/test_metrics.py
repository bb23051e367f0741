import numpy as np
import pytest

from meanfield_dropout import coupled_rms, predictor_distance, wasserstein2


def test_coupled_rms_is_the_papers_formula():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((50, 4)), rng.standard_normal((50, 4))
    # columns: output weight a_i, then input weights w_i
    want = np.sqrt(np.mean(np.sum((a[:, 1:] - b[:, 1:]) ** 2, axis=1))
                   + np.mean((a[:, 0] - b[:, 0]) ** 2))
    assert coupled_rms(a, b) == pytest.approx(want, rel=1e-14)


def test_w2_ignores_indexing_and_is_below_the_coupled_distance():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((40, 3))
    assert wasserstein2(a, a[rng.permutation(40)]) == pytest.approx(0.0, abs=1e-12)
    b = a + 0.1 * rng.standard_normal(a.shape)
    assert wasserstein2(a, b) <= coupled_rms(a, b) + 1e-12


def test_w2_of_a_translation_is_its_length():
    a = np.random.default_rng(2).standard_normal((30, 2))
    assert wasserstein2(a, a + [3.0, 4.0]) == pytest.approx(5.0, rel=1e-12)


def test_predictor_distance():
    assert predictor_distance([0.0, 0.0], [3.0, 4.0]) == pytest.approx(np.sqrt(12.5))


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match="second has shape"):
        coupled_rms(np.zeros((3, 2)), np.zeros((4, 2)))


def test_network_simplex_equals_the_assignment():
    """POT's exact solver and SciPy's assignment give the same W2 (both exact LPs)."""
    pytest.importorskip("ot")
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((60, 4)), rng.standard_normal((60, 4)) + 0.3
    exact = wasserstein2(a, b)
    # both optima are the same LP value; they differ by the rounding of n summed costs
    assert wasserstein2(a, b, method="network-simplex") == pytest.approx(exact, rel=1e-12)


def test_sliced_w2_is_a_lower_bound_exact_in_one_dimension():
    pytest.importorskip("ot")
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((80, 3)), 1.5 * rng.standard_normal((80, 3))
    assert wasserstein2(a, b, method="sliced") <= wasserstein2(a, b) * (1 + 1e-12)
    line_a, line_b = a[:, :1], b[:, :1] + 2.0
    # in 1-D every projection is ±the identity: sliced W2 = W2 up to rounding
    assert wasserstein2(line_a, line_b, method="sliced", projections=3) == pytest.approx(
        wasserstein2(line_a, line_b), rel=1e-12)


def test_large_clouds_are_refused_by_the_cubic_solver():
    big = np.zeros((6000, 2))
    with pytest.raises(ValueError, match="limited to 5000 particles.*sliced"):
        wasserstein2(big, big)


@pytest.mark.parametrize("call,message", [
    (lambda: wasserstein2(np.zeros((0, 2)), np.zeros((0, 2))), "non-empty"),
    (lambda: coupled_rms(np.zeros((0, 2)), np.zeros((0, 2))), "non-empty"),
    (lambda: predictor_distance([], []), "at least one data point"),
    (lambda: wasserstein2(np.zeros((3, 2), complex), np.zeros((3, 2))), "complex"),
    (lambda: wasserstein2(np.zeros((3, 2)), np.zeros((3, 2)), method="emd"), "method must"),
])
def test_degenerate_metric_inputs_are_errors_not_nan(call, message):
    with pytest.raises(ValueError, match=message):
        call()
