"""Log–log slope fits and Student-t intervals (meanfield_dropout.stats)."""
import numpy as np
import pytest
from scipy import stats

from meanfield_dropout.stats import fit_slopes, loglog_fit, mean_interval


def test_loglog_fit_matches_polyfit_and_its_standard_error():
    rng = np.random.default_rng(0)
    x = np.array([0.05, 0.1, 0.2, 0.4])
    y = 3.0 * x ** 1.5 * np.exp(0.05 * rng.standard_normal((3, 4)))
    slope, error, intercept = loglog_fit(x, y)
    for row, s, e, c in zip(y, slope, error, intercept):
        fit = stats.linregress(np.log(x), np.log(row))
        assert s == pytest.approx(fit.slope, rel=1e-12)
        assert c == pytest.approx(fit.intercept, rel=1e-12)
        assert e == pytest.approx(fit.stderr, rel=1e-10)
    single = loglog_fit(x, y[0])
    assert isinstance(single[0], float) and single[0] == pytest.approx(slope[0], rel=1e-14)
    assert np.isnan(loglog_fit([1.0, 2.0], [1.0, 4.0])[1])
    assert loglog_fit([1.0, 2.0], [1.0, 4.0])[0] == pytest.approx(2.0)


@pytest.mark.parametrize("x, y", [([1.0, 2.0], [0.0, 1.0]), ([1.0], [1.0]),
                                  ([1.0, -2.0], [1.0, 1.0]), ([1.0, 2.0], [1.0, np.nan])])
def test_loglog_fit_refuses_values_without_a_log(x, y):
    with pytest.raises(ValueError, match="log-log"):
        loglog_fit(x, y)


def test_fit_slopes_recovers_power_law():
    widths = [10, 20, 40, 80]
    rng = np.random.default_rng(0)
    dist = np.array([3.0 * np.array(widths) ** -0.5 * np.exp(0.01 * rng.standard_normal(4))
                     for _ in range(4)])
    fit = fit_slopes(widths, dist)
    assert abs(fit["slope"] + 0.5) < 0.03
    assert fit["slope_ci"][0] < fit["slope"] < fit["slope_ci"][1] < 0
    assert fit["slope_ci"][1] - fit["slope_ci"][0] < 0.1
    exact = fit_slopes(widths, np.array([np.array(widths) ** -1.0] * 2))
    np.testing.assert_allclose(exact["slopes"], [-1.0, -1.0])
    assert exact["slope_std"] < 1e-12


def test_mean_interval_is_the_student_interval_and_skips_diverged_runs():
    nan = np.nan
    values = np.array([[0.3, 0.5, 0.1, 0.6], [0.2, nan, 0.4, nan], [nan, 1.0, nan, nan]])
    mean, half = mean_interval(values)
    for row, m, h in zip(values, mean, half):
        kept = row[np.isfinite(row)]
        assert m == pytest.approx(kept.mean())
        if kept.size > 1:
            low, high = stats.t.interval(0.95, kept.size - 1, loc=kept.mean(),
                                         scale=stats.sem(kept))
            assert h == pytest.approx((high - low) / 2)
        else:
            assert np.isnan(h)


@pytest.mark.parametrize("widths, distances, message", [
    ([10, 20, 40], [[1.0, 2.0], [3.0, 4.0]], r"shape \(repeats, 3\)"),
    ([10, 20], [1.0, 2.0, 3.0], r"shape \(repeats, 2\)"),
    ([10, 20], [[1.0, 2.0], [3.0]], "numeric array"),
    ([10, 20], [["a", "b"]], "numeric array"),
    ([[10, 20]], [[1.0, 2.0]], "widths must have 1 dimension"),
    ([10, 20], [[1.0, np.inf]], "finite"),
])
def test_fit_slopes_names_mismatched_or_bad_input(widths, distances, message):
    with pytest.raises(ValueError, match=message):
        fit_slopes(widths, distances)
