"""Limit dynamics: consistency between limits, exact clocks, integrator error, bad input,
divergence reports, memory and work estimates."""
import warnings

import numpy as np
import pytest
from scipy import stats

from meanfield_dropout import DivergenceError, init_particles, predict, simulate, teacher_student
from meanfield_dropout.kernels.limit_steps import RingState, Rings, _jump_events
from meanfield_dropout.limits import LIMITS, LimitConstants, limit_constants, simulate_limit
from meanfield_dropout.network import network_data
from meanfield_dropout.runtime.memory import LongRunWarning, MemoryLimitError
from meanfield_dropout.kernels.rows import _all_features

DATA = teacher_student(dim=3, data_points=12, teacher_width=3, seed=1)
CONSTANTS = {"wgf": {}, "penalized-wgf": dict(beta=1.0), "jump-poisson": dict(alpha=0.5),
             "jump-bernoulli": dict(alpha=0.5, tau=0.25), "critical": dict(alpha=0.5, beta=1.0)}


TRAIN = network_data(DATA.inputs, DATA.targets, activation="tanh")


def run(limit, times, limit_particles=None, initial=None, seed=0, **kw):
    kw = {**CONSTANTS[limit], **kw}
    constants = LimitConstants(*(kw.pop(name, None) for name in LimitConstants._fields))
    return simulate_limit(limit, TRAIN, constants, times=times, limit_particles=limit_particles,
                          initial=initial, seed=seed, **kw)


def predictor_gap(first, second):
    return float(np.sqrt(np.mean((first - second) ** 2)))


@pytest.mark.parametrize("limit", LIMITS)
def test_time_zero_is_initial_cloud(limit):
    X0 = init_particles(50, 3, seed=3)
    result = run(limit, [0.0, 0.5], initial=X0)
    np.testing.assert_array_equal(result.snapshots[0], X0)
    np.testing.assert_allclose(result.predictor[0],
                               predict(X0, DATA.inputs, activation="tanh"), atol=1e-12)
    assert not np.array_equal(result.snapshots[1], X0)


@pytest.mark.parametrize("limit", LIMITS)
def test_same_seed_same_numbers(limit):
    first = run(limit, [0.0, 0.5, 1.0], limit_particles=40, seed=7)
    second = run(limit, [0.0, 0.5, 1.0], limit_particles=40, seed=7)
    np.testing.assert_array_equal(first.snapshots, second.snapshots)


@pytest.mark.parametrize("limit", ["jump-poisson", "critical", "jump-bernoulli"])
def test_same_seed_sequence_object_same_numbers(limit):
    """Reusing one SeedSequence must not advance its spawn counter into new streams."""
    seed = np.random.SeedSequence(7)
    first = run(limit, [0.0, 0.5], limit_particles=40, seed=seed)
    second = run(limit, [0.0, 0.5], limit_particles=40, seed=seed)
    np.testing.assert_array_equal(first.snapshots, second.snapshots)


def test_heun_error_is_second_order_and_small():
    """Halving dt changes the flow by ~1/4 as much each time; default dt error < 1e-5."""
    X0 = init_particles(30, 3, seed=0)
    f = [run("penalized-wgf", [1.0], initial=X0, dt=dt).predictor[-1]
         for dt in (0.1, 0.05, 0.025, 0.0125)]
    diffs = [predictor_gap(f[k], f[k + 1]) for k in range(3)]
    assert 3.0 < diffs[0] / diffs[1] < 5.0 and 3.0 < diffs[1] / diffs[2] < 5.0
    fine = run("penalized-wgf", [1.0], initial=X0, dt=0.005).predictor[-1]
    default = run("penalized-wgf", [1.0], initial=X0).predictor[-1]
    assert predictor_gap(default, fine) < 1e-5


def test_wgf_matches_small_step_gradient_descent():
    """Mean-field GD with master_lr dt is the Euler scheme of the WGF: O(dt) apart."""
    X0 = init_particles(30, 3, seed=0)
    flow = run("wgf", [1.0], initial=X0).snapshots[-1]
    gaps = []
    for lr in (0.02, 0.01):
        gd = simulate(DATA.inputs, DATA.targets, master_lr=lr, steps=round(1 / lr),
                      initial=X0, variants=("gd",), activation="tanh", progress=False)
        gaps.append(np.abs(gd.final["gd"] - flow).max())
    assert gaps[1] < 0.6 * gaps[0] and gaps[1] < 1e-2


def test_bernoulli_with_keep_one_is_gradient_descent():
    X0 = init_particles(30, 3, seed=0)
    jump = run("jump-bernoulli", [0.0, 1.0, 2.0], initial=X0, alpha=0.25, tau=0.25)
    gd = simulate(DATA.inputs, DATA.targets, master_lr=0.25, steps=8, initial=X0,
                  variants=("gd",), activation="tanh", snapshot_steps=(4, 8), progress=False)
    np.testing.assert_allclose(jump.snapshots[1:], gd.snapshots["gd"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jump.times, [0.0, 1.0, 2.0])


def test_poisson_jump_tends_to_wgf_as_alpha_vanishes():
    X0 = init_particles(200, 3, seed=0)
    flow = run("wgf", [1.0], initial=X0).predictor[-1]
    gaps = [predictor_gap(run("jump-poisson", [1.0], initial=X0, alpha=alpha,
                              seed=5).predictor[-1], flow)
            for alpha in (0.4, 0.1, 0.025)]
    assert gaps[2] < 0.5 * gaps[0]
    assert gaps[2] < 0.01


def test_critical_tends_to_poisson_jump_as_beta_vanishes():
    """With β → 0 the forward pass β(φ(X) + Σ_{L~Poisson(1/β)} φ(Y_l)) → ∫φ dμ."""
    X0 = init_particles(200, 3, seed=0)
    ref = np.mean([run("jump-poisson", [1.0], initial=X0, seed=s).predictor[-1]
                   for s in range(4)], axis=0)
    gaps = [predictor_gap(np.mean([run("critical", [1.0], initial=X0, beta=beta,
                                       seed=s).predictor[-1] for s in range(4)], axis=0), ref)
            for beta in (1.0, 0.01)]
    assert gaps[1] < 0.5 * gaps[0]


def test_critical_mean_drift_is_penalized_wgf_drift():
    """E[jump of particle i] / α over partners L ~ Poisson(1/β), Y ~ μ = −Dφᵀ(r + βφ/m)."""
    rng = np.random.default_rng(0)
    X = init_particles(20, 3, seed=2)
    data = network_data(DATA.inputs, DATA.targets, activation="tanh")
    Zt = data.inputs_t
    alpha, beta, events = 1e-3, 0.5, 40000
    # the penalized-WGF drift: one engine ``penalized`` step of length 1 with penalty β (the
    # subtraction of X costs at most an ulp of X, far below the tolerance below)
    drift = simulate(DATA.inputs, DATA.targets, master_lr=1.0, steps=1, initial=X,
                     variants=("penalized",), penalty=beta, activation="tanh",
                     progress=False).final["penalized"] - X
    i = 4
    increments = np.empty((events, X.shape[1]))
    base_value, base_deriv = np.empty((2, X.shape[0], Zt.shape[1]))
    base_features = _all_features(X, data, base_value, base_deriv)
    counts = rng.poisson(1 / beta, size=events)
    partners = rng.integers(0, X.shape[0], size=counts.sum())
    start = 0
    for e in range(events):
        Y = X.copy()
        features = base_features.copy()
        f = features.mean(axis=0)
        _jump_events(Y, RingState(base_value.copy(), base_deriv.copy(), features, f), data,
                     alpha, beta, Rings(np.array([i]), counts[e:e + 1],
                                        partners[start:start + counts[e]]),
                     (np.inf, np.inf), np.zeros(X.shape[0], dtype=np.int64))
        start += counts[e]
        increments[e] = (Y[i] - X[i]) / alpha
    mean = increments.mean(axis=0)
    sem = increments.std(axis=0) / np.sqrt(events)
    assert np.all(np.abs(mean - drift[i]) < 4 * sem + 1e-3 * np.abs(drift[i]).max())


def test_poisson_jump_count_law():
    """Rings per particle over [0, T] are Poisson(T/α): chi-square goodness of fit."""
    T, alpha, n = 3.0, 0.5, 4000
    jumps = simulate_limit("jump-poisson", TRAIN, LimitConstants(alpha=alpha),
                           times=[0.0, 1.0, T], limit_particles=n, seed=11).jumps
    rate = T / alpha
    assert abs(jumps.mean() - rate) < 4 * np.sqrt(rate / n)
    edges = np.arange(0, 15)
    observed = np.array([np.sum(jumps == k) for k in edges[:-1]] + [np.sum(jumps >= 14)])
    expected = n * np.append(stats.poisson.pmf(edges[:-1], rate), stats.poisson.sf(13, rate))
    chi2 = np.sum((observed - expected) ** 2 / expected)
    assert stats.chi2.sf(chi2, df=len(edges) - 1) > 1e-3


def test_critical_jump_count_law():
    jumps = run("critical", [0.0, 2.0], limit_particles=3000, seed=1).jumps
    assert abs(jumps.mean() - 4.0) < 4 * np.sqrt(4.0 / 3000)
    assert abs(jumps.var() / 4.0 - 1.0) < 0.1


@pytest.mark.parametrize("limit, kwargs, name", [
    ("jump-poisson", dict(alpha=0.0), "alpha"),
    ("jump-poisson", dict(alpha=np.inf), "alpha"),
    ("critical", dict(alpha=1.0, beta=-1.0), "beta"),
    ("critical", dict(alpha=np.nan, beta=1.0), "alpha"),
    ("penalized-wgf", dict(beta=None), "beta"),
    ("jump-bernoulli", dict(alpha=0.5, tau=1.0), "alpha"),
    ("jump-bernoulli", dict(alpha=0.5, tau=0.0), "tau"),
    ("wgf", dict(dt=0.0), "dt"),
])
def test_bad_constants_name_the_argument(limit, kwargs, name):
    with pytest.raises(ValueError, match=name):
        run(limit, [0.0, 1.0], limit_particles=5, **kwargs)


@pytest.mark.parametrize("limit", LIMITS)
def test_each_limit_takes_the_constants_of_the_table(limit):
    from meanfield_dropout.limits import LIMIT_CONSTANTS

    values = dict(alpha=2.0, beta=3.0, tau=1.5)
    constants = limit_constants(limit, **values)
    assert {k for k, v in constants.items() if v} == set(LIMIT_CONSTANTS[limit])
    for name in LIMIT_CONSTANTS[limit]:
        with pytest.raises(ValueError, match=f"needs {name}"):
            limit_constants(limit, **dict(values, **{name: None}))


def test_bad_limit_times_and_particles():
    with pytest.raises(ValueError, match="limit"):
        limit_constants("jump")
    with pytest.raises(ValueError, match="times"):
        run("wgf", [1.0, 0.5], limit_particles=5)
    with pytest.raises(ValueError, match="times"):
        run("wgf", [0.0, np.nan], limit_particles=5)
    with pytest.raises(ValueError, match="particles"):
        run("wgf", [1.0], limit_particles=0)
    with pytest.raises(ValueError, match="initial"):
        run("wgf", [1.0], initial=np.ones((4, 7)))


@pytest.mark.parametrize("train, constants, message", [
    (DATA.inputs, LimitConstants(), "train must be a NetworkData .*got ndarray"),
    (network_data(DATA.inputs, np.stack([DATA.targets] * 2, axis=1)), LimitConstants(),
     "train must have one output, the square loss and float64 data, got 2 output"),
    (network_data(DATA.inputs, np.sign(DATA.targets) + (DATA.targets == 0), loss="logistic"),
     LimitConstants(), "got 1 output.*logistic"),
    (network_data(DATA.inputs, DATA.targets, dtype="float32"), LimitConstants(), "float32"),
    (TRAIN, dict(alpha=0.5), "constants must be a LimitConstants, got dict"),
])
def test_bad_train_and_constants_are_named(train, constants, message):
    with pytest.raises(ValueError, match=message):
        simulate_limit("jump-poisson", train, constants, times=[0.0, 1.0], limit_particles=5)


def test_divergence_is_reported():
    X0 = init_particles(10, 3, seed=0)
    with pytest.raises(DivergenceError, match="limit 'jump-poisson' diverged at ring 1 "):
        run("jump-poisson", [0.0, 1e300], initial=X0, alpha=1e300)
    with pytest.raises(DivergenceError, match="limit 'wgf' diverged at Heun step"):
        run("wgf", [0.0, 1e10], initial=X0 * 1e300, dt=1e10)


def unstable_flow(times):
    """A Heun step of 40 on this problem overshoots and grows without bound."""
    with pytest.raises(DivergenceError) as info:
        run("wgf", times, initial=init_particles(10, 3, seed=0), dt=40.0)
    return info.value


def test_flow_divergence_step_does_not_depend_on_the_output_grid():
    """Grids whose intervals are multiples of dt run the same Heun steps: the step and time
    reported are the first out of range, not the end of the interval holding it."""
    reports = [unstable_flow(40.0 * np.arange(0, 1001, every)) for every in (1, 5, 500)]
    assert len({e.step for e in reports}) == 1 and len({e.time for e in reports}) == 1
    first = reports[0]
    assert 0 < first.step < 500 and first.time == pytest.approx(40.0 * first.step)
    message = str(first)
    assert f"Heun step {first.step} (t = " in message and "smaller dt" in message
    assert "master_lr" not in message


@pytest.mark.parametrize("limit", ["jump-poisson", "critical", "jump-bernoulli"])
def test_jump_divergence_names_the_limit_its_unit_and_constants(limit):
    constants = dict(alpha=1e6, tau=0.5) if limit == "jump-bernoulli" else dict(alpha=1e6)
    with pytest.raises(DivergenceError) as info:
        run(limit, [0.0, 1e8], initial=init_particles(10, 3, seed=0), **constants)
    error, message = info.value, str(info.value)
    assert error.variant == limit and "master_lr" not in message and "ram" not in message
    assert f"limit '{limit}' diverged at " in message and "alpha = 1e+06" in message
    if limit == "jump-bernoulli":
        assert f"step {error.step} (t = " in message and error.time == 0.5 * error.step
    else:
        assert f"ring {error.step} " in message


def test_a_finite_blow_up_is_a_divergence_and_the_factor_sets_the_range():
    """Every limit stays finite on this short run; a tiny divergence factor (range just
    above the initial scale) makes each diverge, a huge one never."""
    X0 = init_particles(20, 3, seed=2)
    for limit in LIMITS:
        run(limit, [0.0, 1.0], initial=X0, divergence_factor=1e300)
        with pytest.raises(DivergenceError, match=f"limit '{limit}' diverged"):
            run(limit, [0.0, 50.0], initial=X0 * 1e-3, divergence_factor=1e-3)


def test_sizes_are_checked_before_allocating_and_long_runs_announced():
    with pytest.raises(MemoryLimitError, match=r"partners per ring \(1/beta\).*larger beta"):
        run("critical", [0.0, 1.0], limit_particles=10, beta=1e-12)
    with pytest.raises(MemoryLimitError, match="snapshot"):
        run("wgf", np.linspace(0.0, 1.0, 10 ** 6), limit_particles=10 ** 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LongRunWarning)      # raised before anything runs
        for limit in LIMITS:
            with pytest.raises(LongRunWarning, match="long run: about"):
                run(limit, [0.0, 1e12], limit_particles=100)
