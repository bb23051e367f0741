"""The limits are the engine's steps: exact identities, rounding bounds, thread counts.

* A Heun step of ``wgf`` / ``penalized-wgf`` is ½(X + E(E(X))) with E the engine's ``gd`` /
  ``penalized`` step (master learning rate dt, mean-field output scale, penalty λ = β). Both
  sides run the same core kernels on the same arguments, so they agree bit for bit.
* A ring of ``jump-poisson`` is the engine's ``ram`` step with a mask keeping only the ringing
  row (τ/q = α), and a ring of ``critical`` is its ``pn_ram`` step with the forward mask {i} ∪
  partners (output scale 1, q = 1/β). Here the two sides sum in different orders (BLAS blocks
  against plain loops), so they agree to a rounding bound derived below.
"""
import numba
import numpy as np
import pytest

from meanfield_dropout import ExplicitNoise, init_particles, simulate, teacher_student
from meanfield_dropout.kernels.limit_steps import RingState, Rings, _jump_events
from meanfield_dropout.limits import LimitConstants, simulate_limit
from meanfield_dropout.network import network_data
from meanfield_dropout.runtime import threads as thread_limits
from meanfield_dropout.kernels.rows import _all_features

DATA = teacher_student(dim=8, data_points=100, teacher_width=3, seed=1)
D = DATA.inputs.shape[1]
#: Unit roundoff of float64.
U = np.finfo(np.float64).eps / 2
#: More neurons than one block of blocks.BLOCK = 64 rows, so the blocked kernels use several.
N = 150


def gamma(k):
    """γ_k = k u / (1 − k u): |fl(Σ_{l≤k} t_l) − Σ t_l| ≤ γ_k Σ |t_l| in any order (Higham)."""
    return k * U / (1 - k * U)


def engine_step(X, variant, bias, **kw):
    return simulate(DATA.inputs, DATA.targets, steps=1, initial=X, variants=(variant,),
                    activation="tanh", bias=bias, progress=False, **kw).final[variant]


# ---------------------------------------------------------------------------------------------
# (b) flows: a Heun step is the mean of X and two engine steps, exactly
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("limit, variant, beta", [("wgf", "gd", None),
                                                  ("penalized-wgf", "penalized", 0.7)])
def test_heun_step_is_the_mean_of_x_and_two_engine_steps(limit, variant, beta, bias):
    dt = 0.0625     # a power of 2: the second grid gap, 2 dt, splits into steps of exactly dt
    X0 = init_particles(N, D, seed=4, bias=bias)

    def E(X):
        return engine_step(X, variant, bias, master_lr=dt, output_scale="mean_field",
                           penalty=beta)

    train = network_data(DATA.inputs, DATA.targets, activation="tanh", bias=bias)
    flow = simulate_limit(limit, train, LimitConstants(beta=beta), times=[0.0, dt, 3 * dt],
                          initial=X0, dt=dt)
    expected = [X0]
    for _ in range(3):
        expected.append(0.5 * (expected[-1] + E(E(expected[-1]))))
    # the same kernels on the same arguments: no rounding difference at all
    np.testing.assert_array_equal(flow.snapshots[1], expected[1])
    np.testing.assert_array_equal(flow.snapshots[2], expected[3])


# ---------------------------------------------------------------------------------------------
# (c) jumps: a ring is a one-row engine step, to a derived rounding bound
# ---------------------------------------------------------------------------------------------

def ring_tolerance(X, i, weights, alpha, bias):
    """Bound on |ring_i − engine_i| per coordinate of neuron i (tanh, square loss).

    Both sides compute X_i − α Dφ(X_i)ᵀ r with r = (Σ_l weights_l φ(X_l) − y)/m, from the same
    formulas but with sums in different orders. By the standard bound for sums in any order
    (:func:`gamma`), first order in u, each side is within ``err`` of the exact value, so
    they are within 2·err of each other:

    * pre-activation u_j = Σ_c w_c z_cj + b: error δu_j = γ_{d+1} (Σ_c |w_c z_cj| + |b|);
    * σ = tanh (glibc: within 2 ulp = 4u): δσ = |σ'| δu + 4u|σ|; σ' = 1 − σ² (one more
      product and a subtraction): δσ' = |σ''| δu + 10u;
    * features φ_l = a_l σ_l and the weighted sum f (``count`` terms, times a weight):
      δf = Σ_l w_l (|a_l| δσ_l + 3u |φ_l|) + γ_count Σ_l w_l |φ_l|; δr = (δf + u|f − y|)/m
      + u|r|;
    * a-part Σ_j σ_j r_j (m terms, one product each): γ_{m+1} Σ|σ r| + Σ (δσ |r| + |σ| δr);
      w-part Σ_j σ'_j a r_j z_cj (three products each): γ_{m+3} Σ|σ' a r z|
      + Σ |a z| (δσ' |r| + σ' δr); b-part likewise with z = 1;
    * the update X_i − α g: u (|X_i| + 2α|g|) (the product and the subtraction).
    """
    Z, y = DATA.inputs, DATA.targets
    m, d = Z.shape
    a, W = X[:, 0], X[:, 1:1 + d]
    b = X[:, 1 + d] if bias else np.zeros(X.shape[0])
    t = np.tanh(W @ Z.T + b[:, None])
    s1 = 1 - t ** 2
    du = gamma(d + 1) * (np.abs(W) @ np.abs(Z.T) + np.abs(b)[:, None])
    dsig = s1 * du + 4 * U * np.abs(t)
    phi = np.abs(a[:, None] * t)
    f = weights @ (a[:, None] * t)
    df = weights @ (np.abs(a)[:, None] * dsig + 3 * U * phi) \
        + gamma(np.count_nonzero(weights)) * (weights @ phi)
    r = (f - y) / m
    dr = (df + U * np.abs(f - y)) / m + U * np.abs(r)
    dsig1 = np.abs(2 * t[i] * s1[i]) * du[i] + 10 * U
    grad = [t[i] @ r] + list((s1[i] * a[i] * r) @ Z) + ([np.sum(s1[i] * a[i] * r)] if bias
                                                       else [])
    err = [gamma(m + 1) * np.abs(t[i] * r).sum() + (dsig[i] * np.abs(r) + np.abs(t[i]) * dr).sum()]
    for z in list(Z.T) + ([np.ones(m)] if bias else []):
        err.append(gamma(m + 3) * np.abs(s1[i] * a[i] * r * z).sum()
                   + (np.abs(a[i] * z) * (dsig1 * np.abs(r) + s1[i] * dr)).sum())
    grad, err = np.abs(np.array(grad)), np.array(err)
    return 2 * (alpha * err + U * (np.abs(X[i]) + 2 * alpha * grad))


def one_ring_run(X0, alpha, bias):
    """A ``jump-poisson`` run whose first grid interval holds exactly one ring."""
    gap = alpha / N        # one ring expected
    for seed in range(50):
        run = simulate_limit("jump-poisson",
                             network_data(DATA.inputs, DATA.targets, activation="tanh",
                                          bias=bias),
                             LimitConstants(alpha=alpha), times=[0.0, gap], initial=X0,
                             seed=seed)
        if run.jumps.sum() == 1:
            return run
    raise AssertionError("no seed gave a single ring")


@pytest.mark.parametrize("bias", [False, True])
def test_poisson_ring_is_a_one_row_ram_step(bias):
    """X_i ← X_i − α Dφ(X_i)ᵀ r_μ is ``ram`` with only row i kept, τ/q = α, forward unmasked."""
    alpha = 0.3
    X0 = init_particles(N, D, seed=5, bias=bias)
    run = one_ring_run(X0, alpha, bias)
    i = int(np.argmax(run.jumps))
    mask = np.zeros((1, N), dtype=bool)
    mask[0, i] = True
    # q = 1/2 and τ = α/2: the engine's step τ·(1/q) is α exactly
    step = engine_step(X0, "ram", bias, master_lr=alpha / 2, keep_prob=0.5,
                       output_scale="mean_field", noise=ExplicitNoise(mask))
    ring = run.snapshots[1]
    others = np.arange(N) != i
    np.testing.assert_array_equal(ring[others], X0[others])
    np.testing.assert_array_equal(step[others], X0[others])
    tol = ring_tolerance(X0, i, np.full(N, 1.0 / N), alpha, bias)
    assert np.all(np.abs(ring[i] - step[i]) <= tol)
    assert np.all(np.abs(ring[i] - X0[i]) > 1e3 * tol)       # the ring moved it: not vacuous


@pytest.mark.parametrize("bias", [False, True])
def test_critical_ring_is_a_one_row_pn_ram_step(bias):
    """X_i ← X_i − α Dφ(X_i)ᵀ (β(φ_i + Σ_l φ(Y_l)) − y)/m with distinct partners l ≠ i is
    ``pn_ram`` with forward mask {i} ∪ partners, backward mask {i}, output scale 1 and
    q = 1/β (forward weight β), master learning rate τ = α q."""
    alpha, beta, i, partners = 0.3, 2.0, 7, np.array([3, 90, 149, 64])
    X0 = init_particles(N, D, seed=6, bias=bias)
    data = network_data(DATA.inputs, DATA.targets, activation="tanh", bias=bias)
    Zt = data.inputs_t
    ring = X0.copy()
    value, deriv = np.empty((N, Zt.shape[1])), np.empty((N, Zt.shape[1]))
    features = _all_features(ring, data, value, deriv)
    jumps = np.zeros(N, dtype=np.int64)
    bad = _jump_events(ring, RingState(value, deriv, features, features.mean(axis=0)), data,
                       alpha, beta, Rings(np.array([i]), np.array([partners.size]), partners),
                       (np.inf, np.inf), jumps)
    assert bad == -1 and jumps[i] == 1 and jumps.sum() == 1
    backward = np.zeros((1, N), dtype=bool)
    backward[0, i] = True
    forward = backward.copy()
    forward[0, partners] = True
    # q = 1/β = 1/2 and τ = α/2: forward weight 1/q = β and step τ/q = α, both exact
    step = engine_step(X0, "pn_ram", bias, master_lr=alpha / beta, keep_prob=1 / beta,
                       output_scale="standard", noise=ExplicitNoise(backward, forward))
    weights = np.where(forward[0], beta, 0.0)
    tol = ring_tolerance(X0, i, weights, alpha, bias)
    np.testing.assert_array_equal(np.delete(ring, i, 0), np.delete(X0, i, 0))
    assert np.all(np.abs(ring[i] - step[i]) <= tol)
    assert np.all(np.abs(ring[i] - X0[i]) > 1e3 * tol)


# ---------------------------------------------------------------------------------------------
# Thread-count independence
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("limit, kw", [("wgf", {}), ("penalized-wgf", dict(beta=0.5)),
                                       ("jump-poisson", dict(alpha=0.5)),
                                       ("critical", dict(alpha=0.5, beta=1.0))])
def test_same_numbers_whatever_the_thread_count(monkeypatch, limit, kw):
    # use every thread allowed, even on this small problem (3 blocks of neurons)
    monkeypatch.setattr(thread_limits, "threads_for", lambda cells, available: available)
    threads = numba.get_num_threads()

    def run():
        return simulate_limit(limit, network_data(DATA.inputs, DATA.targets, activation="tanh"),
                              LimitConstants(**kw), times=[0.0, 0.3, 0.6], limit_particles=N,
                              seed=2)
    try:
        numba.set_num_threads(1)
        one = run()
        numba.set_num_threads(max(2, threads))
        many = run()
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(one.snapshots, many.snapshots)
    np.testing.assert_array_equal(one.predictor, many.predictor)
