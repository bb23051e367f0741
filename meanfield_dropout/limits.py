"""Particle simulations of the five large-width limits of dropout (notes §3.3).

Every limit is driven by the engine's feature map φ(x, z) = a σ(w·z + b), data (z_j, y_j) and
initial particles, with its own particle count N. The predictor of a cloud μ is
f_μ = ∫φ dμ = (1/N) Σ_i φ(X_i), and, as in the engine, the data inner product is the mean, so
r_μ = (f_μ − y)/m and ∇V_μ(x) = Dφ(x)ᵀ r_μ.

=====================  =========  =============================================================
limit                  constants  dynamics of one particle
=====================  =========  =============================================================
``wgf``                α=0, β=0   dX/dt = −Dφ(X)ᵀ r_μ
``penalized-wgf``      β > 0      dX/dt = −Dφ(X)ᵀ (r_μ + β φ(X)/m)
``jump-poisson``       α > 0      at the rings of a rate-1/α Poisson clock, X ← X − α Dφ(X)ᵀ r_μ
``jump-bernoulli``     τ, α ≥ τ   X_{k+1} = X_k − (τ/q) B Dφ(X_k)ᵀ r_{μ_k}, B ~ Bernoulli(q),
                                  q = τ/α
``critical``           α, β > 0   at the rings of a rate-1/α clock,
                                  X ← X − α Dφ(X)ᵀ [β(φ(X) + Σ_{l≤L} φ(Y_l)) − y]/m,
                                  L ~ Poisson(1/β), Y_l i.i.d. from the current cloud
=====================  =========  =============================================================

α = lim τ_n/q_n and β = lim (1 − q_n)/(n q_n) (c and λ in the notes). Time is t = k τ_n for
the continuous-time limits (``wgf``, ``penalized-wgf``, ``jump-poisson``, ``critical``); the
Bernoulli limit runs in steps of length τ, so its time t = k τ is also the dropout time
t = k τ_n when τ_n = τ. In ``critical`` the L partners are drawn uniformly, with replacement,
from the N current particles (the jumping one included, a 1/N effect), and the forward output
β(φ(X) + Σ φ(Y_l)) is the limit of dropout's (1/(n q_n)) Σ_{kept j} φ(X_j): with q_n → 0 the
number of kept co-neurons is Binomial(n − 1, q_n) → Poisson(1/β).

Integrators:

* ``wgf`` and ``penalized-wgf``: Heun's method (explicit trapezoid, second order) with a fixed
  step ``dt`` (default :data:`DEFAULT_DT`), shortened so it divides every interval of the
  output grid. On a small teacher–student problem (targets of order 0.1–1) the default step is
  within 1e-5 (RMS over the data) of the predictor at dt = 0.005 at t = 1, and the error
  falls fourfold per halving of dt (tested).
* ``jump-poisson`` and ``critical``: exact, event by event. The N independent rate-1/α clocks
  superpose to one clock of rate N/α whose rings pick a uniformly random particle; on a grid
  interval of length Δ the number of rings is Poisson(NΔ/α) and only their order matters. The
  jumping particle's features and the predictor are updated incrementally, O(m d) per ring.
* ``jump-bernoulli``: this is the finite-N RaM update, so it runs on the engine
  (:func:`meanfield_dropout.engine.simulate`, variant ``ram``) with N particles, master
  learning rate τ and keep probability q.
"""
import dataclasses
import math

import numpy as np
from numba import njit
from tqdm.auto import tqdm

from . import results
from ._validate import check_array, check_choice, check_int, check_positive, seed_sequence
from .activations import _dsigma, _sigma, activation_code
from .engine import DivergenceError, init_particles, simulate
from .network import check_particles

#: The five limits and the constants each needs (α, β, τ; see :func:`limit_constants`).
LIMIT_CONSTANTS = {"wgf": (), "penalized-wgf": ("beta",), "jump-poisson": ("alpha",),
                   "jump-bernoulli": ("alpha", "tau"), "critical": ("alpha", "beta")}
LIMITS = tuple(LIMIT_CONSTANTS)
#: Default Heun step of the gradient flows (time units).
DEFAULT_DT = 0.02
#: Largest number of Poisson rings drawn and processed in one kernel call.
_EVENT_BATCH = 1 << 20


@results.register
@dataclasses.dataclass(eq=False)
class LimitResult:
    """Snapshots of one limit simulation on a time grid.

    Stored by :mod:`meanfield_dropout.results` (:meth:`save`, :meth:`load`).

    Attributes
    ----------
    limit : str
    times : ndarray, shape (T,)
        Times of the snapshots (for ``jump-bernoulli``: steps × τ).
    snapshots : ndarray, shape (T, N, p)
        The particle cloud μ_t at each time.
    predictor : ndarray, shape (T, m)
        ∫φ dμ_t on the training inputs.
    jumps : ndarray of int, shape (N,) or None
        Rings of each particle's clock over the whole run (jump limits; None for the flows).
    settings : dict
        Constants and options of the run.
    """

    limit: str
    times: np.ndarray
    snapshots: np.ndarray
    predictor: np.ndarray
    jumps: np.ndarray | None
    settings: dict

    def save(self, path):
        """Write the result to one ``.npz`` file; returns its path."""
        return results.save(self, path)

    @classmethod
    def load(cls, path):
        """Read a result written by :meth:`save` (ValueError naming a bad file)."""
        return results.load(path, cls)


def limit_constants(limit, alpha=None, beta=None, tau=None):
    """Validate the constants a limit needs; return them as a dict of floats.

    ``wgf`` needs none; ``penalized-wgf`` needs β ∈ (0, ∞); ``jump-poisson`` α ∈ (0, ∞);
    ``jump-bernoulli`` τ ∈ (0, ∞) and α ∈ [τ, ∞) (so q = τ/α ∈ (0, 1]); ``critical`` α, β ∈
    (0, ∞). Constants a limit does not use are ignored.

    Raises
    ------
    ValueError
        Naming the constant (``alpha``, ``beta`` or ``tau``) that is missing or out of range.
    """
    check_choice(limit, "limit", LIMITS)
    given = dict(alpha=alpha, beta=beta, tau=tau)
    out = {"alpha": 0.0, "beta": 0.0, "tau": 0.0}
    for name in LIMIT_CONSTANTS[limit]:
        if given[name] is None:
            raise ValueError(f"limit {limit!r} needs {name} (a finite number > 0)")
        out[name] = check_positive(given[name], name)
    if limit == "jump-bernoulli" and out["alpha"] < out["tau"]:
        raise ValueError(f"alpha must be >= tau for jump-bernoulli (keep probability "
                         f"q = tau/alpha in (0, 1]), got alpha={out['alpha']!r}, "
                         f"tau={out['tau']!r}")
    return out


# ---------------------------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------------------------

@njit(cache=True)
def _drift(X, Z, Zt, y, has_bias, act, penalty, out):
    """out_i = −Dφ(X_i)ᵀ (r_μ + penalty φ(X_i)/m) for every particle; returns f_μ.

    ``Z`` is the data (m×d), ``Zt`` its transpose; r_μ = (f_μ − y)/m.
    """
    n = X.shape[0]
    d, m = Zt.shape
    W = np.ascontiguousarray(X[:, 1:1 + d])
    pre = np.dot(W, Zt)
    value = np.empty((n, m))
    grad_pre = np.empty((n, m))
    f = np.zeros(m)
    for i in range(n):
        b = X[i, 1 + d] if has_bias else 0.0
        for j in range(m):
            pre[i, j] += b
            value[i, j] = _sigma(act, pre[i, j])
            f[j] += X[i, 0] * value[i, j]
    f /= n
    r = (f - y) / m
    for i in range(n):
        a = X[i, 0]
        acc_a = 0.0
        acc_b = 0.0
        for j in range(m):
            e = r[j] + penalty * a * value[i, j] / m
            acc_a += value[i, j] * e
            grad_pre[i, j] = a * _dsigma(act, pre[i, j]) * e
            acc_b += grad_pre[i, j]
        out[i, 0] = -acc_a
        if has_bias:
            out[i, 1 + d] = -acc_b
    grad_w = np.dot(grad_pre, Z)
    for i in range(n):
        for c in range(d):
            out[i, 1 + c] = -grad_w[i, c]
    return f


@njit(cache=True)
def _heun(X, Z, Zt, y, has_bias, act, penalty, dt, steps):
    """Advance X in place by ``steps`` Heun steps of length ``dt``; False if not finite."""
    k1 = np.empty_like(X)
    k2 = np.empty_like(X)
    trial = np.empty_like(X)
    for _ in range(steps):
        _drift(X, Z, Zt, y, has_bias, act, penalty, k1)
        for i in range(X.shape[0]):
            for c in range(X.shape[1]):
                trial[i, c] = X[i, c] + dt * k1[i, c]
        _drift(trial, Z, Zt, y, has_bias, act, penalty, k2)
        for i in range(X.shape[0]):
            for c in range(X.shape[1]):
                X[i, c] += 0.5 * dt * (k1[i, c] + k2[i, c])
    for i in range(X.shape[0]):
        for c in range(X.shape[1]):
            if not math.isfinite(X[i, c]):
                return False
    return True


@njit(cache=True)
def _particle_features(X, i, Zt, has_bias, act, out):
    """out_j = φ(X_i, z_j) = a_i σ(w_i·z_j + b_i)."""
    d, m = Zt.shape
    for j in range(m):
        acc = X[i, 1 + d] if has_bias else 0.0
        for c in range(d):
            acc += X[i, 1 + c] * Zt[c, j]
        out[j] = X[i, 0] * _sigma(act, acc)


@njit(cache=True)
def _all_features(X, Zt, has_bias, act):
    """φ(X_i, z_j) for every particle, shape (N, m)."""
    out = np.empty((X.shape[0], Zt.shape[1]))
    for i in range(X.shape[0]):
        _particle_features(X, i, Zt, has_bias, act, out[i])
    return out


@njit(cache=True)
def _cloud_predictor(X, Zt, has_bias, act):
    """∫φ dμ = (1/N) Σ_i φ(X_i, z_j) on every column of ``Zt`` (serial, thread-count free)."""
    out = np.zeros(Zt.shape[1])
    row = np.empty(Zt.shape[1])
    for i in range(X.shape[0]):
        _particle_features(X, i, Zt, has_bias, act, row)
        out += row
    return out / X.shape[0]


@njit(cache=True)
def _jump(X, i, residual, step, Zt, has_bias, act, pre):
    """X_i ← X_i − step · Dφ(X_i)ᵀ residual (residual already carries the 1/m)."""
    d, m = Zt.shape
    a = X[i, 0]
    for j in range(m):
        acc = X[i, 1 + d] if has_bias else 0.0
        for c in range(d):
            acc += X[i, 1 + c] * Zt[c, j]
        pre[j] = acc
    grad_a = 0.0
    grad_b = 0.0
    for j in range(m):
        grad_a += _sigma(act, pre[j]) * residual[j]
        g = a * _dsigma(act, pre[j]) * residual[j]
        grad_b += g
        for c in range(d):
            X[i, 1 + c] -= step * g * Zt[c, j]
    X[i, 0] -= step * grad_a
    if has_bias:
        X[i, 1 + d] -= step * grad_b


@njit(cache=True)
def _jump_events(X, features, f, Zt, y, has_bias, act, alpha, beta, who, partner_counts,
                 partners, jumps):
    """Process the rings ``who`` (particle indices, in order) of the superposed clock.

    Poisson jump (``beta == 0``): X_i ← X_i − α Dφ(X_i)ᵀ r_μ, r_μ = (f − y)/m.
    Critical (``beta > 0``): the forward output is β(φ(X_i) + Σ_l φ(Y_l)) with the
    ``partner_counts[e]`` partners ``partners[...]`` (indices into the current cloud).
    ``features`` (N, m) and ``f`` = mean of its rows are kept up to date; ``jumps`` counts rings
    per particle. Returns the index of the first ring after which X_i is not finite, or −1.
    """
    n = X.shape[0]
    m = Zt.shape[1]
    residual = np.empty(m)
    pre = np.empty(m)
    new = np.empty(m)
    cursor = 0
    for e in range(who.shape[0]):
        i = who[e]
        if beta == 0.0:
            for j in range(m):
                residual[j] = (f[j] - y[j]) / m
        else:
            for j in range(m):
                residual[j] = features[i, j]
            for l in range(partner_counts[e]):
                k = partners[cursor + l]
                for j in range(m):
                    residual[j] += features[k, j]
            cursor += partner_counts[e]
            for j in range(m):
                residual[j] = (beta * residual[j] - y[j]) / m
        _jump(X, i, residual, alpha, Zt, has_bias, act, pre)
        _particle_features(X, i, Zt, has_bias, act, new)
        for j in range(m):
            if not math.isfinite(new[j]):
                return e
            f[j] += (new[j] - features[i, j]) / n
            features[i, j] = new[j]
        jumps[i] += 1
    return -1


# ---------------------------------------------------------------------------------------------
# Public driver
# ---------------------------------------------------------------------------------------------

def _check_times(times):
    times = check_array(times, "times", 1)
    if times.size == 0 or times[0] < 0 or np.any(np.diff(times) < 0):
        raise ValueError("times must be a non-empty, non-decreasing sequence of numbers >= 0")
    return times


def simulate_limit(limit, inputs, targets, *, times, alpha=None, beta=None, tau=None,
                   particles=None, initial=None, seed=0, activation="tanh", bias=False,
                   dt=DEFAULT_DT, progress=False):
    """Simulate the limit dynamics ``limit`` with N particles and record it at ``times``.

    Parameters
    ----------
    limit : str
        One of :data:`LIMITS`.
    inputs : ndarray, shape (m, d)
    targets : ndarray, shape (m,)
    times : sequence of float
        Non-decreasing output times t ≥ 0 (time t = k τ_n of the dropout run). For
        ``jump-bernoulli`` each is rounded to the nearest step, t ≈ k τ.
    alpha, beta, tau : float, optional
        The limit constants α = lim τ_n/q_n, β = lim (1 − q_n)/(n q_n), τ = lim τ_n; which
        ones are needed is listed in :func:`limit_constants`.
    particles : int, optional
        N, drawn from μ₀ (:func:`~meanfield_dropout.engine.init_particles`) with ``seed``.
    initial : ndarray, shape (N, p), optional
        Initial particles instead of ``particles``.
    seed : int or numpy.random.SeedSequence
        Root seed: spawns the initialisation and the clock/partner streams (the same seed,
        or the same ``SeedSequence`` passed again, gives the same run).
    activation : str
    bias : bool
    dt : float
        Heun step of ``wgf`` and ``penalized-wgf`` (shortened to divide each grid interval).
    progress : bool
        Show a ``tqdm`` bar.

    Returns
    -------
    LimitResult

    Raises
    ------
    ValueError
        For a bad argument (named in the message).
    DivergenceError
        If the particles stop being finite (``step`` = Heun step, ring or Bernoulli step).
    """
    constants = limit_constants(limit, alpha, beta, tau)
    inputs = check_array(inputs, "inputs", 2)
    m, dim = inputs.shape
    if m < 1:
        raise ValueError("inputs must hold at least one data point")
    targets = check_array(targets, "targets", 1, shape=(m,))
    times = _check_times(times)
    act = activation_code(activation)
    dt = check_positive(dt, "dt")
    init_seq, run_seq = seed_sequence(seed).spawn(2)
    if (particles is None) == (initial is None):
        raise ValueError("give exactly one of particles (int >= 1) and initial (particle array)")
    if initial is None:
        initial = init_particles(check_int(particles, "particles", low=1), dim,
                                 seed=init_seq, bias=bias)
    X = check_particles(initial, dim, bias, name="initial").copy()
    Zt = np.ascontiguousarray(inputs.T)
    settings = dict(limit=limit, particles=X.shape[0], activation=activation,
                    bias=bool(bias), **constants)
    if limit == "jump-bernoulli":
        return _bernoulli(X, inputs, targets, times, constants, run_seq, activation, bias,
                          progress, settings)
    snapshots = np.empty((times.size,) + X.shape)
    predictor = np.empty((times.size, m))
    bar = tqdm(total=float(times[-1]), disable=not progress, desc=f"limit {limit}",
               unit="time")
    if limit in ("wgf", "penalized-wgf"):
        jumps = None
        settings["dt"] = dt
        done = 0
        for k, t in enumerate(times):
            gap = t - (times[k - 1] if k else 0.0)
            steps = math.ceil(gap / dt - 1e-9) if gap > 0 else 0
            if steps and not _heun(X, inputs, Zt, targets, bool(bias), act,
                                   constants["beta"], gap / steps, steps):
                bar.close()
                raise DivergenceError(done + steps, limit)
            done += steps
            snapshots[k] = X
            bar.update(gap)
    else:
        jumps = _run_events(X, Zt, targets, times, constants, run_seq, act, bool(bias),
                            snapshots, bar, limit)
    bar.close()
    for k in range(times.size):
        predictor[k] = _cloud_predictor(snapshots[k], Zt, bool(bias), act)
    return LimitResult(limit, times, snapshots, predictor, jumps, settings)


def _run_events(X, Zt, targets, times, constants, seq, act, has_bias, snapshots, bar, limit):
    """Exact event-driven simulation of ``jump-poisson`` / ``critical`` (see module doc)."""
    n = X.shape[0]
    alpha, beta = constants["alpha"], constants["beta"]
    rng = np.random.default_rng(seq)
    features = _all_features(X, Zt, has_bias, act)
    jumps = np.zeros(n, dtype=np.int64)
    rings = 0
    for k, t in enumerate(times):
        gap = t - (times[k - 1] if k else 0.0)
        remaining = rng.poisson(n * gap / alpha) if gap > 0 else 0
        f = features.mean(axis=0)        # fresh sum: no drift of the incremental update
        while remaining:
            count = min(remaining, _EVENT_BATCH)
            who = rng.integers(0, n, size=count)
            if beta > 0:
                partner_counts = rng.poisson(1.0 / beta, size=count)
                partners = rng.integers(0, n, size=int(partner_counts.sum()))
            else:
                partner_counts = np.zeros(0, dtype=np.int64)
                partners = np.zeros(0, dtype=np.int64)
            bad = _jump_events(X, features, f, Zt, targets, has_bias, act, alpha, beta, who,
                               partner_counts, partners, jumps)
            if bad >= 0:
                bar.close()
                raise DivergenceError(rings + bad, limit, "ring of the superposed clock")
            rings += count
            remaining -= count
        snapshots[k] = X
        bar.update(gap)
    return jumps


def _bernoulli(X, inputs, targets, times, constants, seq, activation, bias, progress,
               settings):
    """Discrete Bernoulli jump limit = RaM with N particles on the engine."""
    tau = constants["tau"]
    keep = tau / constants["alpha"]
    steps = np.rint(times / tau).astype(np.int64)
    # the engine takes an integer seed: derive one from this limit's stream
    result = simulate(inputs, targets, master_lr=tau, steps=int(steps[-1]), keep_prob=keep,
                      initial=X, variants=("ram",), seed=int(seq.generate_state(1)[0]),
                      activation=activation, bias=bias, snapshot_steps=np.unique(steps),
                      loss_every=max(1, int(steps[-1])), progress=progress)
    where = np.searchsorted(result.snapshot_steps, steps)
    snapshots = result.snapshots["ram"][where]
    Zt = np.ascontiguousarray(inputs.T)
    act = activation_code(activation)
    predictor = np.stack([_cloud_predictor(s, Zt, bool(bias), act) for s in snapshots])
    settings["keep"] = keep
    return LimitResult("jump-bernoulli", steps * tau, snapshots, predictor, None, settings)
