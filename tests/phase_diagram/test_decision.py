"""The stated decision rules: asymptotic (over widths, decision.py) and at one width
(comparison.py)."""
import math

import numpy as np
import pytest

from meanfield_dropout.stats import t_quantile
from phase_diagram.finder.comparison import compare_candidates
from phase_diagram.finder.decision import (DEFAULT_SLOPE_THRESHOLD, decide_asymptotic, explodes,
                                           log_ratio_at, paired_log_ratio, pooled_slope)
from phase_diagram.scan import run_scan, summarize
from phase_diagram.scan.config import load_config
from pathlib import Path

WIDTHS = np.array([64, 128, 256, 512, 1024])
SMALL = Path(__file__).resolve().parents[2] / "examples" / "phase_scan_small.toml"


def _noisy(rate, scale=1.0, noise=0.1, repeats=4, seed=0):
    rng = np.random.default_rng(seed)
    return scale * WIDTHS[:, None] ** rate * np.exp(noise * rng.standard_normal((WIDTHS.size,
                                                                                 repeats)))


def test_pooled_slope_recovers_the_rate_and_its_interval_covers_it():
    d = _noisy(-0.5)
    slope, low, high = pooled_slope(WIDTHS, d)
    assert low < -0.5 < high and slope == pytest.approx(-0.5, abs=0.1)
    # non-finite cells are left out; one width has no slope
    d[0, 0] = np.nan
    assert math.isfinite(pooled_slope(WIDTHS, d)[0])
    assert pooled_slope(WIDTHS[:1], d[:1]) == (pytest.approx(math.nan, nan_ok=True),
                                               -math.inf, math.inf)


def test_paired_and_fitted_log_ratios():
    base = _noisy(-0.5)
    m, lo, hi = paired_log_ratio(3 * base[-1], base[-1])
    assert m == pytest.approx(math.log(3)) and lo == pytest.approx(m) == hi
    # a ratio growing like n^0.5: the line gives the ratio at the largest width
    m, lo, hi = log_ratio_at(WIDTHS, base * WIDTHS[:, None] ** 0.5, base, WIDTHS[-1])
    assert m == pytest.approx(0.5 * math.log(1024)) and lo <= m <= hi
    m, lo, hi = log_ratio_at(WIDTHS, base * (WIDTHS[:, None] / 1024) ** -0.5, base, 1024)
    assert m == pytest.approx(0.0, abs=1e-9)


def test_clear_case_is_decided():
    d = decide_asymptotic(WIDTHS, {"jump-poisson": _noisy(-0.5, 0.5),
                                   "wgf": _noisy(0.0, 0.2, seed=1)})
    assert d.phase == "jump-poisson" and d.decided and d.width == 1024
    assert d.fits["wgf"].ratio > 2 and d.fits["jump-poisson"].slope_high < -0.15


def test_two_candidates_within_noise_are_undetermined():
    # both fall like n^-1/2; one is 1.3x the other, the repeats' noise 30%
    a = _noisy(-0.5, noise=0.3, seed=2)
    b = 1.3 * _noisy(-0.5, noise=0.3, seed=3)
    d = decide_asymptotic(WIDTHS, {"critical": a, "penalized-wgf": b})
    assert d.phase == "undetermined" and not d.decided
    assert "not clearly 2x farther" in d.reason
    # swapping the names swaps nothing else: still undetermined
    assert decide_asymptotic(WIDTHS, {"critical": b, "penalized-wgf": a}).phase == \
        "undetermined"


def test_not_falling_best_is_undetermined_and_diverged_cells_never_win():
    d = decide_asymptotic(WIDTHS, {"wgf": _noisy(0.0, 0.01), "critical": _noisy(0.0, 1.0)})
    assert d.phase == "undetermined" and "not clearly falling" in d.reason
    falling = _noisy(-0.5, 0.01)
    falling[-1, 2] = np.nan                     # one diverged cell at the largest width
    d = decide_asymptotic(WIDTHS, {"wgf": falling, "critical": _noisy(0.0, 1.0)})
    assert d.phase != "wgf" and d.fits["wgf"].diverged
    # every candidate diverged or growing: degenerate
    diverged = np.full((WIDTHS.size, 4), np.inf)
    d = decide_asymptotic(WIDTHS, {"wgf": diverged, "critical": _noisy(0.6, 0.1)})
    assert d.phase == "degenerate"


def test_rule_ignores_candidate_and_repeat_order():
    a, b = _noisy(-0.6, 0.1), _noisy(0.0, 1.0, seed=4)
    d1 = decide_asymptotic(WIDTHS, {"wgf": a, "critical": b})
    d2 = decide_asymptotic(WIDTHS, {"critical": b[:, ::-1], "wgf": a[:, ::-1]})
    assert (d1.phase, d1.reason) == (d2.phase, d2.reason)


def test_bad_arguments():
    with pytest.raises(ValueError, match="widths"):
        decide_asymptotic([64], {"wgf": np.ones((1, 2))})
    with pytest.raises(ValueError, match="shape"):
        decide_asymptotic(WIDTHS, {"wgf": np.ones((3, 2))})
    with pytest.raises(ValueError, match="ratio > 1"):
        decide_asymptotic(WIDTHS, {"wgf": np.ones((5, 2))}, ratio=1.0)


def test_compare_candidates_nearest_margin_closeness_and_simplest():
    rng = np.random.default_rng(5)
    noise = np.exp(0.05 * rng.standard_normal(4))
    cmp_ = compare_candidates({"wgf": 0.050 * noise, "jump-poisson": 0.010 * noise[::-1],
                               "critical": 0.009 * noise}, scale=1.0)
    assert cmp_.nearest == "critical" and cmp_.runner_up == "jump-poisson"
    assert not cmp_.clear and cmp_.close
    # jump-poisson is within 2x of the nearest and simpler than critical
    assert cmp_.describes == "jump-poisson" and cmp_.describe_margin > 4
    far = compare_candidates({"wgf": 0.5 * noise, "critical": 0.4 * noise}, scale=1.0)
    assert not far.close and far.describes == "none"
    clear = compare_candidates({"wgf": 0.01 * noise, "critical": 0.1 * noise[::-1]})
    assert clear.clear and clear.nearest == "wgf" and clear.margin == pytest.approx(10, rel=0.1)
    diverged = compare_candidates({"wgf": np.full(3, np.nan), "critical": np.full(3, 0.01)})
    assert diverged.nearest == "critical" and diverged.relative["wgf"] == math.inf
    assert compare_candidates({"wgf": np.full(3, np.nan)}).describes == "none"


def test_decisions_do_not_depend_on_the_worker_count(tmp_path):
    config = load_config(SMALL, allow_import=True)
    phases = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        run_scan(config, out, workers=workers, progress=False, allow_import=True)
        _, results, missing = summarize(out)
        assert missing == 0
        phases.append([(r.decision.phase, r.decision.reason) for r in results])
    assert phases[0] == phases[1]


# Noise levels of the not-falling tests, derived from the rule: with the default window (the
# 4 largest of WIDTHS, spaced by log 2) and R repeats, the pooled slope's standard error is
# σ / √(R Σ(x − x̄)²) with Σ(x − x̄)² = 5 (log 2)², and the interval's half-width h is the
# Student-t quantile (4R − 2 degrees of freedom) times it.
def _noise_for_half_width(half, repeats=4):
    return half * math.sqrt(repeats * 5 * math.log(2) ** 2) / t_quantile(4 * repeats - 2, 0.95)


THRESHOLD = DEFAULT_SLOPE_THRESHOLD
# tight: h = threshold / 3, so a flat distance's interval dips below −threshold only when its
# slope is off by 2h (≈ 4.3 standard errors); wide: h = 4 × threshold, so it lies above
# −threshold only when its slope is off by +3 × threshold (≈ 1.6 standard errors, for every
# candidate at once)
TIGHT, WIDE = _noise_for_half_width(THRESHOLD / 3), _noise_for_half_width(4 * THRESHOLD)


def _flat_candidates(noise, seed):
    # flat distances, within 2x of each other: no limit can be accepted
    return {name: _noisy(0.0, scale, noise=noise, seed=seed + i)
            for i, (name, scale) in enumerate([("critical", 0.3), ("penalized-wgf", 0.35),
                                               ("wgf", 0.5)])}


def test_flat_tight_distances_are_degenerate_with_the_not_falling_option():
    for seed in range(0, 30, 3):
        distances = _flat_candidates(TIGHT, seed)
        d = decide_asymptotic(WIDTHS, distances, flat_slope=THRESHOLD)
        assert d.phase == "degenerate", d.reason
        assert all(f.slope_low > -THRESHOLD for f in d.fits.values())
        assert "clearly not falling" in d.reason and d.settings["flat_slope"] == THRESHOLD
        # without the option the rule is unchanged: undetermined, with the reason's form
        d = decide_asymptotic(WIDTHS, distances)
        assert d.phase == "undetermined" and d.reason.startswith("undetermined at n <= 1024: ")
        assert "is not clearly falling (slope" in d.reason


def test_flat_wide_distances_stay_undetermined():
    for seed in range(0, 30, 3):
        d = decide_asymptotic(WIDTHS, _flat_candidates(WIDE, seed), flat_slope=THRESHOLD)
        assert d.phase == "undetermined", d.reason
        assert d.reason.startswith("undetermined at n <= 1024: ")


def test_a_limit_falling_just_faster_than_the_threshold_is_never_degenerate():
    # rate threshold + h (tight noise): its interval's low end is above −threshold only when
    # its slope is off by 2h; the flat competitors are clearly not falling
    phases = set()
    for noise in (TIGHT, WIDE):
        for seed in range(0, 30, 3):
            distances = _flat_candidates(TIGHT, seed)
            distances["jump-poisson"] = _noisy(-(THRESHOLD + THRESHOLD / 3), 0.2, noise=noise,
                                               seed=seed + 10)
            d = decide_asymptotic(WIDTHS, distances, flat_slope=THRESHOLD)
            assert d.phase in ("jump-poisson", "undetermined"), d.reason
            phases.add(d.phase)
    assert phases == {"jump-poisson", "undetermined"}


def test_flat_slope_is_checked():
    with pytest.raises(ValueError, match="flat_slope"):
        decide_asymptotic(WIDTHS, {"wgf": np.ones((5, 2))}, flat_slope=-0.1)


def test_frozen_dropout_with_limits_that_do_not_fall_is_degenerate():
    frozen = np.ones((WIDTHS.size, 4), dtype=bool)
    for seed in range(0, 30, 3):
        distances = _flat_candidates(TIGHT, seed)
        d = decide_asymptotic(WIDTHS, distances, frozen=frozen)
        assert d.phase == "degenerate" and "never moved" in d.reason
        # one cell of the window where dropout moved: the clause does not apply
        moved = frozen.copy()
        moved[-1, 0] = False
        assert decide_asymptotic(WIDTHS, distances, frozen=moved).phase == "undetermined"
        # a cell before the window does not count
        early = frozen.copy()
        early[0, 0] = False
        assert decide_asymptotic(WIDTHS, distances, frozen=early).phase == "degenerate"
    # a limit that falls is never called degenerate, frozen or not
    distances = _flat_candidates(TIGHT, 0)
    distances["jump-poisson"] = _noisy(-0.5, 0.2, noise=TIGHT, seed=9)
    assert decide_asymptotic(WIDTHS, distances, frozen=frozen).phase != "degenerate"
    with pytest.raises(ValueError, match="frozen must have shape"):
        decide_asymptotic(WIDTHS, distances, frozen=frozen[:2])


def test_dropout_exploding_at_every_width_of_the_window_after_a_quiet_one_is_degenerate():
    distances = {"wgf": _noisy(-0.5, 0.2), "critical": _noisy(0.0, 1.0)}
    exploded = np.zeros((WIDTHS.size, 4), dtype=bool)
    exploded[1:, 0] = True                        # one repeat at each of the 4 largest widths
    for name in distances:
        distances[name][exploded] = np.nan        # an exploded run has no distance
    d = decide_asymptotic(WIDTHS, distances, exploded=exploded)
    assert d.phase == "degenerate"
    assert d.reason.endswith("at every width n = 128..1024, and in none at n = 64")
    assert explodes(exploded) and not explodes(exploded, window=5)
    # exploding at every width (no quiet one), or only at the small widths: no such decision
    everywhere = exploded.copy()
    everywhere[0, 0] = True
    small = exploded[::-1].copy()
    for flags in (everywhere, small):
        d = decide_asymptotic(WIDTHS, distances, exploded=flags)
        assert not explodes(flags) and "left its bounds" not in d.reason

