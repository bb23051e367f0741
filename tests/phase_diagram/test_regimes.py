"""Scalings, limit constants, classification and simplex geometry (phase_diagram)."""
import math

import numpy as np
import pytest
import sympy

from phase_diagram import CallableScaling, classify, parse_scaling, power_law
from phase_diagram.plots import to_cartesian
from phase_diagram.theory.scalings import sequence_limit, LIMIT_WIDTHS

# (tau expression, keep expression, phase, alpha, beta, tau_inf)
CASES = [
    # WGF: gamma < min(1, b_tau)
    ("0.5*n**-0.5", "0.7", "wgf", 0.0, 0.0, 0.0),
    ("n**-0.8", "n**-0.3", "wgf", 0.0, 0.0, 0.0),
    ("0.1/log(n)", "1", "wgf", 0.0, 0.0, 0.0),              # q = 1: GD with vanishing LR
    ("n**-0.5*log(n)", "1/sqrt(log(n))", "wgf", 0.0, 0.0, 0.0),
    # penalized WGF: gamma = 1 < b_tau, or log factor on the boundary
    ("0.5*n**-1.5", "1/n", "penalized-wgf", 0.0, 1.0, 0.0),
    ("1/(n*log(n))", "1/n", "penalized-wgf", 0.0, 1.0, 0.0),
    ("n**-2", "0.25/n", "penalized-wgf", 0.0, 4.0, 0.0),
    # continuous-time jump: gamma = b_tau < 1
    ("0.3*n**-0.5", "0.6*n**-0.5", "jump-poisson", 0.5, 0.0, 0.0),
    ("0.2/log(n)", "0.4/log(n)", "jump-poisson", 0.5, 0.0, 0.0),   # vertex (1,0,0)
    ("n**(-1/3)", "2*n**(-1/3)", "jump-poisson", 0.5, 0.0, 0.0),
    ("n**-(1/3)", "2*n**(-1/3)", "jump-poisson", 0.5, 0.0, 0.0),   # exact, however written
    ("n**(-2/3*1)", "n**(-2/3)", "jump-poisson", 1.0, 0.0, 0.0),
    # discrete-time jump: constant tau, q
    ("0.5", "0.7", "jump-bernoulli", 0.5 / 0.7, 0.0, 0.5),
    ("0.25", "1", "jump-bernoulli", 0.25, 0.0, 0.25),
    ("0.25", "3", "jump-bernoulli", 0.25, 0.0, 0.25),                # q clipped to 1
    ("0.25", "1 + 1/n", "jump-bernoulli", 0.25, 0.0, 0.25),          # callable, clipped
    # critical: tau ~ q ~ 1/n
    ("1/n", "1/n", "critical", 1.0, 1.0, 0.0),
    ("0.5/n", "2/n", "critical", 0.25, 0.5, 0.0),
    ("1/n + 1/n**2", "1/n", "critical", 1.0, 1.0, 0.0),              # callable
    # degenerate
    ("0.5", "1/log(n)", "degenerate", math.inf, 0.0, 0.5),           # tau > 0, q -> 0
    ("n**-0.5", "n**-0.7", "degenerate", math.inf, 0.0, 0.0),        # alpha = inf
    ("n**-2", "n**-1.5", "degenerate", 0.0, math.inf, 0.0),          # beta = inf
    ("1/n", "1/(n*log(n))", "degenerate", math.inf, math.inf, 0.0),  # both, via log factor
    ("sqrt(n)", "1", "degenerate", math.inf, 0.0, math.inf),         # tau -> inf
]


@pytest.mark.parametrize("tau, keep, phase, alpha, beta, tau_inf", CASES)
def test_classification_of_parametric_families(tau, keep, phase, alpha, beta, tau_inf):
    regime = classify(parse_scaling(tau, keep))
    assert regime.phase == phase, regime.reason
    c = regime.constants
    for got, want in ((c.alpha, alpha), (c.beta, beta), (c.tau, tau_inf)):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9)


def test_degenerate_reason_names_the_infinite_constant():
    assert classify(parse_scaling("0.5", "1/log(n)")).degenerate_causes == ("alpha",)
    assert classify(parse_scaling("n**-2", "n**-1.5")).degenerate_causes == ("beta",)
    assert classify(parse_scaling("1/n", "1/(n*log(n))")).degenerate_causes == ("alpha", "beta")
    assert "beta = inf" in classify(parse_scaling("n**-2", "n**-1.5")).reason


def test_power_law_constructor_matches_parser_exactly():
    direct = power_law(1, 1, 1, 1, tau_log=1)
    parsed = parse_scaling("1/(n*log(n))", "1/n")
    assert direct.constants() == parsed.constants()
    assert direct.tau(100) == pytest.approx(parsed.tau(100))
    # exponents are exact fractions, so 1/3 == 1/3 survives and the ratio is finite
    assert classify(power_law(1, 1 / 3, 2, 1 / 3)).phase == "jump-poisson"


def test_limit_config_for_each_phase():
    cfg = classify(parse_scaling("0.5/n", "2/n")).limit_config()
    assert cfg == dict(limit="critical", alpha=0.25, beta=0.5, tau=0.0)
    cfg = classify(parse_scaling("0.5", "0.7")).limit_config()
    assert cfg["limit"] == "jump-bernoulli" and cfg["tau"] == 0.5
    assert cfg["tau"] / cfg["alpha"] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="no limit dynamics"):
        classify(parse_scaling("n**-2", "n**-1.5")).limit_config()


@pytest.mark.parametrize("b_tau, b_keep, where", [
    (0.0, 0.0, "vertex_n"), (1.0, 1.0, "centroid"), (0.5, 0.5, "blue"), (2.0, 1.0, "green"),
    (1.0, 0.5, "grey"), (0.5, 0.8, "red"), (2.0, 1.5, "red")])
def test_simplex_limit_lands_in_the_theory_region(b_tau, b_keep, where):
    u = power_law(0.5, b_tau, 0.5, b_keep).simplex_limit()
    assert u.sum() == pytest.approx(1.0) and np.all(u >= 0)
    np.testing.assert_allclose(u, np.array([1, b_tau, b_keep]) / (1 + b_tau + b_keep))
    u_n, u_tau, u_q = u
    checks = {
        "vertex_n": np.allclose(u, [1, 0, 0]),
        "centroid": np.allclose(u, [1 / 3] * 3),
        "blue": math.isclose(u_tau, u_q) and u_q < u_n,      # continuous-time jump segment
        "green": math.isclose(u_n, u_q) and u_q < u_tau,     # penalized segment
        "grey": u_q < min(u_n, u_tau),
        "red": u_q > min(u_n, u_tau),
    }
    assert checks[where]


def test_cartesian_corners_and_centroid():
    np.testing.assert_allclose(to_cartesian(np.eye(3)), [[0, 0], [1, 0], [0.5, math.sqrt(3) / 2]])
    np.testing.assert_allclose(to_cartesian([1 / 3] * 3), [0.5, math.sqrt(3) / 6])


def _barycentric(xy):
    """Inverse of to_cartesian for points of the plane, shape (2,) -> (3,)."""
    from phase_diagram.plots import CORNERS
    return np.linalg.solve(np.vstack([CORNERS.T, np.ones(3)]), np.append(xy, 1.0))


def test_theory_regions_are_drawn_where_the_phases_are():
    from matplotlib.colors import to_rgb
    from matplotlib.figure import Figure
    from matplotlib.path import Path
    from phase_diagram.plots import draw_theory
    ax = Figure().add_subplot()
    draw_theory(ax, legend=False)

    def area(color):
        (patch,) = [p for p in ax.patches
                    if p.get_fill() and to_rgb(p.get_facecolor()) == to_rgb(color)]
        return Path(patch.get_xy())

    def drawn(color, marker="None"):
        (line,) = [l for l in ax.lines
                   if to_rgb(l.get_color()) == to_rgb(color) and l.get_marker() == marker]
        return line.get_xydata()

    grey, red = area("0.75"), area("tab:red")
    rng = np.random.default_rng(0)
    for u in rng.dirichlet(np.ones(3), size=300):
        u_n, u_tau, u_q = u
        if abs(u_q - min(u_n, u_tau)) < 1e-3:
            continue
        xy = to_cartesian(u)
        assert grey.contains_point(xy) == (u_q < min(u_n, u_tau))
        assert red.contains_point(xy) == (u_q > min(u_n, u_tau))
    for color, on_line in (("tab:blue", lambda u: math.isclose(u[1], u[2]) and u[2] < u[0]),
                           ("tab:green", lambda u: math.isclose(u[0], u[2]) and u[2] < u[1])):
        a, b = drawn(color)
        for t in (0.01, 0.5, 0.99):
            assert on_line(_barycentric(a + t * (b - a))), color
    np.testing.assert_allclose(_barycentric(drawn("red", "o")[0]), [1 / 3] * 3, atol=1e-12)
    np.testing.assert_allclose(_barycentric(drawn("tab:orange", "o")[0]), [1, 0, 0],
                               atol=1e-12)


def test_finite_n_simplex_point_tends_to_limit():
    s = parse_scaling("1/(n*log(n))", "1/n")
    far = s.simplex_point(10**12)
    near = s.simplex_point(10**3)
    lim = s.simplex_limit()
    np.testing.assert_allclose(lim, [1 / 3] * 3)
    assert np.abs(far - lim).max() < np.abs(near - lim).max()
    np.testing.assert_allclose(s.simplex_point(10**6).sum(), 1.0)


def test_simplex_limit_clipped_keep_and_log_factors():
    # q clipped to 1: -log q_n = 0, so the point sits on the n-tau edge
    np.testing.assert_allclose(parse_scaling("n**-1", "2").simplex_limit(), [0.5, 0.5, 0])
    # log factors do not move the limit point
    np.testing.assert_allclose(parse_scaling("1/log(n)", "0.5/log(n)").simplex_limit(), [1, 0, 0])


def test_callable_scaling_numerical_limits_and_undetermined():
    s = CallableScaling(lambda n: 0.5 / n + 1 / n**2, lambda n: 1 / n)
    c = s.constants()
    assert c.alpha == pytest.approx(0.5) and c.beta == pytest.approx(1.0) and c.tau == 0.0
    np.testing.assert_allclose(s.simplex_limit(), [1 / 3] * 3, atol=1e-6)
    # an oscillating learning rate has no limit: the classification says so
    wobble = CallableScaling(lambda n: 0.5 * (1.5 + math.sin(math.log(math.log(n)) * 3)),
                             lambda n: 0.7)
    regime = classify(wobble)
    assert regime.phase == "undetermined" and regime.constants.tau is None
    with pytest.raises(ValueError):
        regime.limit_config()
    # callables returning a non-number are evaluation errors, not crashes
    with pytest.raises(ValueError, match="cannot be evaluated"):
        CallableScaling(lambda n: None, lambda n: 1.0).tau(10)
    assert classify(CallableScaling(lambda n: 1j, lambda n: 0.5)).phase == "undetermined"


def test_sequence_limit_recognises_trends():
    n = np.array(LIMIT_WIDTHS)
    assert sequence_limit(1 / np.log(n)) == 0.0                 # log-power decay
    assert sequence_limit(np.log(n)) == math.inf
    assert sequence_limit(n ** 0.1) == math.inf
    assert sequence_limit(2 + 1 / np.log(n)) == pytest.approx(2, rel=1e-3)
    assert sequence_limit(3 + 1 / n) == pytest.approx(3)
    assert sequence_limit(np.array([1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0])) is None
    assert sequence_limit(1 / (np.log(n) * np.log(np.log(n)))) == 0.0
    # a constant plus a term vanishing too slowly to see on the grid is not a trend to 0 or inf
    assert sequence_limit(1 + np.log(n) ** -0.1) is None
    assert sequence_limit(1 - 0.5 * np.log(n) ** -0.1) is None
    assert sequence_limit(0.5 + np.log(n) ** -0.3) is None
    assert sequence_limit(2 + np.log(np.log(n)) ** -0.1) is None


@pytest.mark.parametrize("tau, tau_fn, tau_inf", [
    ("1 + log(n)**-0.1", lambda n: 1 + math.log(n) ** -0.1, 1.0),
    ("1 - 0.5*log(n)**-0.1", lambda n: 1 - 0.5 * math.log(n) ** -0.1, 1.0),
    ("0.5 + 1/log(n)**0.3", lambda n: 0.5 + 1 / math.log(n) ** 0.3, 0.5)])
def test_slowly_settling_learning_rate_is_exact_or_undetermined_not_a_wrong_phase(
        tau, tau_fn, tau_inf):
    # tau_n -> a positive constant, so jump-bernoulli with alpha = tau_inf/0.5, beta = 0.
    # As an expression SymPy finds the limit exactly; as a Python callable the float grid
    # cannot tell it from a trend to 0 (wgf) or, for the increasing sequence, to inf
    # (degenerate): undetermined.
    regime = classify(parse_scaling(tau, "0.5"))
    assert regime.phase == "jump-bernoulli", regime.reason
    assert regime.constants.tau == pytest.approx(tau_inf)
    assert regime.constants.alpha == pytest.approx(2 * tau_inf)
    assert regime.constants.beta == 0.0
    numeric = classify(CallableScaling(tau_fn, lambda n: 0.5))
    assert numeric.phase == "undetermined" and numeric.constants.tau is None


@pytest.mark.parametrize("tau, keep, message", [
    ("0.5*n**", "1", "malformed"),
    ("__import__('os').system('true')", "1", "only log, sqrt and exp"),
    ("n.real", "1", "Attribute"),
    ("x*n", "1", "unknown name 'x'"),
    ("log", "1", "must be called"),
    ("log(n, 2)", "1", "exactly one argument"),
    ("n // 2", "1", "FloorDiv"),
    ("'abc'", "1", "only numbers"),
    ("-0.5*n", "1", "must be positive"),
    ("0.5", "1 - 2*n", "must be positive for all large n"),
    ("", "1", "non-empty"),
    ("[n]", "1", "List"),
    ("lambda: 1", "1", "Lambda"),
    ("exp(1000)", "1", "cannot be evaluated"),
    ("10**400", "1", "cannot be evaluated"),
    ("0**-1", "1", "cannot be evaluated"),
    ("(-n)**0.5", "1", "fractional power"),
    ("0.5", "(-n)**(1/3)", "fractional power"),
    ("+" * 5000 + "n", "1", "nested"),
    ("1" + "*n" * 150, "1", "nested"),
])
def test_parser_rejects_malformed_expressions(tau, keep, message):
    with pytest.raises(ValueError, match=message):
        parse_scaling(tau, keep)


def test_parser_exact_forms_and_pickling():
    import pickle
    s = parse_scaling("0.5*n**-1.5", "1/n")
    assert type(s).__name__ == "PowerLogScaling"
    assert s.tau_seq.n_power == -1.5 and s.keep_seq.n_power == -1
    # not a power law: still exact (SymPy), not the numeric CallableScaling
    callable_scaling = parse_scaling("0.5 + 1/n", "0.7")
    assert type(callable_scaling).__name__ == "ExpressionScaling"
    assert callable_scaling.constants().exact[2] == sympy.Rational(1, 2)
    clone = pickle.loads(pickle.dumps(callable_scaling))
    assert clone.tau(10) == pytest.approx(0.6)
    assert parse_scaling("exp(-1)*sqrt(n)**-1", "1").tau(4) == pytest.approx(math.exp(-1) / 2)


@pytest.mark.parametrize("tau, keep", [("0.5*n**-0.5", "0.7"), ("n**-1.5", "1/n"),
                                       ("n**-0.5", "0.5*n**-0.5"), ("0.5", "0.7"),
                                       ("1/n", "1/n")])
def test_limit_config_is_accepted_by_the_limit_dynamics(tau, keep):
    limits = pytest.importorskip("meanfield_dropout.limits")
    cfg = classify(parse_scaling(tau, keep)).limit_config()
    constants = limits.limit_constants(**cfg)
    for name in ("alpha", "beta", "tau"):
        if constants[name]:
            assert constants[name] == pytest.approx(cfg[name])
