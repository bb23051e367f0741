"""Particle simulations of the five large-width limits of dropout.

Dropout at width n, master learning rate τ_n and keep probability q_n converges, depending on
how (n, τ_n, q_n) scale, to one of five limit dynamics of the particle cloud μ (Chizat, Marion
& Yesbay 2025). This module simulates each with N particles, with no network arithmetic of its
own: φ(x, z) = a σ(w·z + b), the predictor f_μ = ∫φ dμ = (1/N) Σ_i φ(X_i), Dφᵀr and every step
are kernels of :mod:`meanfield_dropout.kernels.core` (output scale 1/N). As in the engine the data
inner product is the mean, so r_μ = (f_μ − y)/m and ∇V_μ(x) = Dφ(x)ᵀ r_μ.

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

α = lim τ_n/q_n and β = lim (1 − q_n)/(n q_n). Time is t = k τ_n for
the continuous-time limits (``wgf``, ``penalized-wgf``, ``jump-poisson``, ``critical``); the
Bernoulli limit runs in steps of length τ, so its time t = k τ is also the dropout time
t = k τ_n when τ_n = τ. In ``critical`` the L partners are drawn uniformly, with replacement,
from the N current particles (the jumping one included, a 1/N effect), and the forward output
β(φ(X) + Σ φ(Y_l)) is the limit of dropout's (1/(n q_n)) Σ_{kept j} φ(X_j): with q_n → 0 the
number of kept co-neurons is Binomial(n − 1, q_n) → Poisson(1/β).

Integrators:

* ``wgf`` and ``penalized-wgf``: Heun's method (explicit trapezoid, second order) with a fixed
  step ``dt`` (default :data:`DEFAULT_DT`), shortened so it divides every interval of the
  output grid. One Heun step is two engine steps: with k(X) the drift and E the engine's
  ``gd`` (β = 0) or ``penalized`` (penalty λ = β) step of master learning rate dt and output
  scale 1/N, E(X) = X + dt k(X) is the Euler trial, E(E(X)) = X + dt (k(X) + k(E(X))), and
  Heun's step is X ← ½(X + E(E(X))) = X + (dt/2)(k(X) + k(E(X))). On a small teacher–student
  problem (targets of order 0.1–1) the default step is within 1e-5 (RMS over the data) of the
  predictor at dt = 0.005 at t = 1, and the error falls fourfold per halving of dt (tested).
* ``jump-poisson`` and ``critical``: exact, event by event. The N independent rate-1/α clocks
  superpose to one clock of rate N/α whose rings pick a uniformly random particle; on a grid
  interval of length Δ the number of rings is Poisson(NΔ/α) and only their order matters. A
  ring of particle i is the one-row step of :mod:`~meanfield_dropout.kernels.core` with step α (the
  engine's ``ram`` step with only row i kept and τ/q = α). The jumping particle's features and
  the predictor are updated incrementally, O(m d) per ring; the predictor is summed afresh at
  every grid time.
* ``jump-poisson`` and ``critical`` with ``clock`` (a :class:`DropoutClock`): the same
  event-by-event simulation, its rings taken from dropout's keep draws (see
  :class:`DropoutClock` for the coupling and why its law is the limit's).
* ``jump-bernoulli``: this is the finite-N RaM update, so it runs on the engine
  (:func:`meanfield_dropout.engine.simulate`, variant ``ram``) with N particles, master
  learning rate τ and keep probability q.

Results do not depend on the Numba thread count (the kernels of
:mod:`~meanfield_dropout.kernels.core` reduce in a fixed order).
"""
import dataclasses
import math

import numpy as np
from tqdm.auto import tqdm

from .runtime import results, tables
from .validation import check_int, check_positive, seed_sequence
from .kernels.blocks import make_workspace
from .kernels.core import _predict
from .kernels.limit_steps import RingState, Rings, _heun, _jump_events
from .engine import DivergenceError, simulate
from .engine_plan import DIVERGENCE_FACTOR, divergence_bounds
from .network import init_particles
from .limit_sizes import (_EVENT_BATCH, _PARTNER_BATCH, LIMIT_CONSTANTS, LIMITS,  # noqa: F401
                          LimitConstants, check_clock, check_limit_size, check_times,
                          heun_steps, limit_constants)
from .network import NetworkData, check_particles, data_names
from .noise import mask_uniforms
from .runtime.threads import blas_single_thread, kernel_threads
from .kernels.rows import _all_features
from .kernels.twins import for_run
from .runtime.compiling import compile_once

#: Default Heun step of the gradient flows (time units).
DEFAULT_DT = 0.02
#: Work between two progress-bar updates of a flow (floating-point operations).
_BAR_OPERATIONS = 2e8


@results.result_class
class LimitResult(results.Result):
    """Snapshots of one limit simulation on a time grid.

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

    def to_frame(self):
        """The run as a tidy table (pandas, the ``table`` extra): one row per time.

        Columns ``limit``, ``time``, ``particles`` N, ``predictor_rms`` (the RMS over the
        training inputs of ∫φ dμ_t) and ``mean_jumps`` (rings per particle over the whole
        run; NaN for the flows).
        """
        jumps = math.nan if self.jumps is None else float(np.mean(self.jumps))
        return tables.frame(
            dict(limit=self.limit, time=float(t), particles=self.snapshots.shape[1],
                 predictor_rms=float(np.sqrt(np.mean(f ** 2))), mean_jumps=jumps)
            for t, f in zip(self.times, self.predictor))


@dataclasses.dataclass(frozen=True)
class DropoutClock:
    """Dropout's keep draws, as the clocks of a Poisson or critical limit coupled to them.

    Dropout (:func:`~meanfield_dropout.engine.simulate` with seed ``seed``, master learning
    rate τ_n = ``master_lr``, N = n neurons) keeps neuron i at step k when U_ik < q_n, U_ik the
    uniforms of :func:`~meanfield_dropout.noise.mask_uniforms`. The coupled limit takes the
    same U_ik: on the step interval [kτ_n, (k+1)τ_n) particle i rings at least once iff
    U_ik < p = 1 − exp(−τ_n/α); given that, its number of rings is drawn from the
    zero-truncated Poisson(τ_n/α) law and the ring times uniformly in the interval, from a
    stream of the limit's own (independent of U).

    Why the coupled limit has the limit's law. The U_ik are i.i.d. uniform, so the ring count
    C_ik of particle i on interval k is 0 with probability exp(−λ), λ = τ_n/α, and, given
    C_ik ≥ 1, zero-truncated Poisson(λ): C_ik ~ Poisson(λ), independent over (i, k); given
    the counts, the times are i.i.d. uniform on their interval. A point process with
    independent Poisson(λ) counts on the disjoint intervals of length τ_n and uniform times
    given the counts is a Poisson process of rate λ/τ_n = 1/α, so each particle has its own
    independent rate-1/α clock: the exact law of the limit (whose uncoupled simulation draws
    the superposition, Poisson(NΔ/α) rings on a grid interval Δ with uniformly chosen
    particles). Only the order of the rings matters to the limit, and it is their time order.
    The critical limit's partners are drawn as without the coupling. Dropout and the limit
    disagree on (i, k) only when U_ik falls between q_n and p, with probability
    |q_n − p| = O(q_n |α_n − α|/α + q_n²) per neuron and step, α_n = τ_n/q_n: over [0, T]
    O((T/α)(|α_n − α|/α + q_n)) disagreements per neuron, which vanish in the continuous-jump
    and critical phases.

    Attributes
    ----------
    seed : int
        The integer seed of dropout's engine run.
    master_lr : float
        τ_n, dropout's step; the limit's output times must be multiples of it.
    """

    seed: int
    master_lr: float


class _CoupledRings:
    """The rings of N rate-1/α clocks coupled to dropout's keep draws (:class:`DropoutClock`),
    interval after interval of the output grid."""

    #: Most uniforms drawn at once.
    CHUNK = 1 << 22

    def __init__(self, clock, particles, alpha, time_seq):
        self.step = float(clock.master_lr)
        self.particles = particles
        self.rate = self.step / alpha                  # λ = τ_n/α rings per particle-step
        self.ring = -math.expm1(-self.rate)           # p = P(at least one ring in a step)
        self.uniforms = mask_uniforms(clock.seed)
        self.times = np.random.default_rng(time_seq)
        self.next_step = 0

    def _counts(self, size):
        """Zero-truncated Poisson(λ) draws (inverse CDF of u uniform on (e^−λ, 1))."""
        lam = self.rate
        u = -math.expm1(-lam) * self.times.random(size) + math.exp(-lam)
        counts = np.ones(size, dtype=np.int64)
        pmf = lam * math.exp(-lam)
        cdf = math.exp(-lam) + pmf
        k = 1
        while True:
            beyond = u > cdf
            if not beyond.any() or k > 1000:
                return counts
            counts += beyond
            k += 1
            pmf *= lam / k
            cdf += pmf

    def rings(self, start, stop):
        """The particles that ring in (start, stop], in time order (``start`` and ``stop`` are
        multiples of the dropout step; the intervals must come in order)."""
        first, last = (int(round(t / self.step)) for t in (start, stop))
        if first != self.next_step:
            raise ValueError(f"the coupled clock reads the step intervals in order: expected "
                             f"step {self.next_step}, got {first}")
        self.next_step = last
        rows = max(1, self.CHUNK // self.particles)
        who, when = [], []
        for k in range(first, last, rows):
            count = min(rows, last - k)
            u = self.uniforms.random((count, self.particles))
            steps, particles = np.nonzero(u < self.ring)
            counts = self._counts(steps.size)
            particles = np.repeat(particles, counts)
            when.append((k + np.repeat(steps, counts) + self.times.random(particles.size))
                        * self.step)
            who.append(particles)
        if not who:
            return np.zeros(0, dtype=np.int64)
        who, when = np.concatenate(who), np.concatenate(when)
        return who[np.argsort(when, kind="stable")].astype(np.int64)


def _check_train(train):
    """``train`` if it is :class:`~meanfield_dropout.network.NetworkData` the limits simulate:
    one output, the square loss, float64."""
    if not isinstance(train, NetworkData):
        raise ValueError(f"train must be a NetworkData (network_data(inputs, targets, "
                         f"activation=...)), got {type(train).__name__}")
    names = data_names(train)
    if (train.outputs, names["loss"], names["dtype"]) != (1, "square", "float64"):
        raise ValueError(f"train must have one output, the square loss and float64 data, got "
                         f"{train.outputs} output(s), {names['loss']}, {names['dtype']}")
    return train


def _cloud_predictor(X, data):
    """∫φ dμ = (1/N) Σ_i φ(X_i, z_j) on the inputs of ``data``, shape (m,) (one output).

    :func:`meanfield_dropout.kernels.core._predict` with scale 1/N (its serial twin on one
    Numba thread), BLAS kept to one thread.
    """
    predict = for_run(_predict, True)
    with blas_single_thread():
        return predict(X, data, 1.0 / X.shape[0])[0]


# ---------------------------------------------------------------------------------------------
# Public driver
# ---------------------------------------------------------------------------------------------

def simulate_limit(limit, train, constants=LimitConstants(), *, times, limit_particles=None,
                   initial=None, seed=0, dt=DEFAULT_DT, divergence_factor=DIVERGENCE_FACTOR,
                   progress=False, clock=None):
    """Simulate the limit dynamics ``limit`` with N particles and record it at ``times``.

    Parameters
    ----------
    limit : str
        One of :data:`LIMITS`.
    train : NetworkData
        Training data and architecture, one output and the square loss in float64
        (:func:`~meanfield_dropout.network.network_data`, e.g. ``network_data(inputs,
        targets, activation="tanh")``).
    constants : LimitConstants
        The limit constants α = lim τ_n/q_n, β = lim (1 − q_n)/(n q_n), τ = lim τ_n; which
        ones are needed is listed in :func:`limit_constants`.
    times : sequence of float
        Non-decreasing output times t ≥ 0 (time t = k τ_n of the dropout run). For
        ``jump-bernoulli`` each is rounded to the nearest step, t ≈ k τ.
    limit_particles : int, optional
        N, the number of the limit's particles, drawn from μ₀
        (:func:`~meanfield_dropout.network.init_particles`) with ``seed``.
    initial : ndarray, shape (N, p), optional
        Initial particles instead of ``limit_particles``.
    seed : int or numpy.random.SeedSequence
        Root seed: spawns the initialisation and the clock/partner streams (the same seed,
        or the same ``SeedSequence`` passed again, gives the same run).
    dt : float
        Heun step of ``wgf`` and ``penalized-wgf`` (shortened to divide each grid interval).
    divergence_factor : float
        The run diverges when a particle entry exceeds this many times max(1, max|X(0)|) or
        the predictor this many times max(1, max|y|), as in
        :func:`~meanfield_dropout.engine.simulate`. It is checked after every Heun step,
        ring or Bernoulli step, so the step reported does not depend on ``times``.
    progress : bool
        Show a ``tqdm`` bar.
    clock : DropoutClock, optional
        ``jump-poisson`` and ``critical`` only: take the rings from dropout's keep draws
        (the coupling of :class:`DropoutClock`; N must be dropout's width and ``times``
        multiples of its step).

    Returns
    -------
    LimitResult

    Raises
    ------
    ValueError
        For a bad argument (named in the message).
    DivergenceError
        If the particles or the predictor leave that range: ``step`` counts Heun steps, rings
        of the superposed clock or Bernoulli steps, ``time`` is the time reached.
    MemoryLimitError
        If the snapshots, features or partner draws would not fit
        (:func:`~meanfield_dropout.runtime.memory.check_memory`), e.g. ``critical`` with a tiny β,
        which draws about 1/β partners per ring.

    Warns
    -----
    LongRunWarning
        When the estimated work (Heun steps, or N·t/α rings with their partners) is large.

    References
    ----------
    L. Chizat, P. Marion, Y. Yesbay, *Phase diagram of dropout for two-layer neural networks
    in the mean-field regime* (2025): the five limits and their conditions on (n, τ_n, q_n).
    """
    data = _check_train(train)
    if not isinstance(constants, LimitConstants):
        raise ValueError(f"constants must be a LimitConstants, got {type(constants).__name__}")
    constants = limit_constants(limit, *constants)
    m, dim = data.inputs.shape
    bias, activation = data.bias, data_names(data)["activation"]
    times = check_times(times)
    dt = check_positive(dt, "dt")
    init_seq, run_seq = seed_sequence(seed).spawn(2)
    if (limit_particles is None) == (initial is None):
        raise ValueError("give exactly one of limit_particles (int >= 1) and initial (particle "
                         "array)")
    if initial is None:
        initial = init_particles(check_int(limit_particles, "limit_particles", low=1), dim,
                                 seed=init_seq, bias=bias)
    X = check_particles(initial, dim, bias, name="initial").copy()
    divergence_factor = check_positive(divergence_factor, "divergence_factor")
    check_limit_size(limit, X.shape, m, times, constants, dt)
    bounds = divergence_bounds(X, data.targets, divergence_factor)
    settings = dict(limit=limit, limit_particles=X.shape[0], activation=activation,
                    bias=bool(bias), **constants)
    if clock is not None:
        settings["clock"] = check_clock(clock, limit, times)
    if limit == "jump-bernoulli":
        return _bernoulli(X, data, times, constants, run_seq, activation, progress,
                          divergence_factor, settings)
    snapshots = np.empty((times.size,) + X.shape)
    with tqdm(total=float(times[-1]), disable=not progress, desc=f"limit {limit}",
              unit="time") as bar, kernel_threads(X.shape[0] * m):
        if limit in ("wgf", "penalized-wgf"):
            jumps = None
            settings["dt"] = dt
            _run_flow(X, data, times, constants["beta"], dt, bounds, snapshots, bar, limit)
        else:
            jumps = _run_events(X, data, times, constants, run_seq, bounds, snapshots, bar,
                                limit, clock)
        predictor = np.stack([_cloud_predictor(s, data) for s in snapshots])
    return LimitResult(limit, times, snapshots, predictor, jumps, settings)


def _flow_hint(dt):
    return f"the Heun step dt = {dt:.3g} may be too large for this flow: try a smaller dt"


def _run_flow(X, data, times, beta, dt, bounds, snapshots, bar, limit):
    """Heun integration of ``wgf`` / ``penalized-wgf`` (see module doc)."""
    done = 0
    (m, d), n, p = data.inputs.shape, X.shape[0], X.shape[1]
    work = make_workspace(n, data.outputs, d, m, X.dtype)
    chunk = max(1, int(_BAR_OPERATIONS / (12.0 * n * m * p)))
    heun = for_run(_heun, True)
    compile_once(heun, (X, data, beta, 0.0, 0, bounds, work), "limits", X.dtype.name)
    bar.reset()                 # the bar's clock starts after the compiling
    for k, steps in enumerate(heun_steps(times, dt).astype(np.int64)):
        start = times[k - 1] if k else 0.0
        length = (times[k] - start) / steps if steps else 0.0
        for first in range(0, steps, chunk):       # chunks only move the progress bar
            count = min(chunk, steps - first)
            bad = heun(X, data, beta, length, count, bounds, work)
            if bad >= 0:
                raise DivergenceError(done + first + bad, limit, _range_detail(bounds),
                                      kind="limit", unit="Heun step",
                                      time=start + (first + bad) * length, hint=_flow_hint(dt))
            bar.update(count * length)
        done += steps
        snapshots[k] = X


def _range_detail(bounds):
    output_bound, parameter_bound = bounds
    return (f"a particle entry beyond {parameter_bound:.3g} or the predictor beyond "
            f"{output_bound:.3g}, or not finite")


def _run_events(X, data, times, constants, seq, bounds, snapshots, bar, limit, clock=None):
    """Exact event-driven simulation of ``jump-poisson`` / ``critical`` (see module doc); with
    ``clock``, the rings come from dropout's keep draws (:class:`DropoutClock`)."""
    n = X.shape[0]
    alpha, beta = constants["alpha"], constants["beta"]
    # the coupled ring times: the first child of the run's stream (its own draws unchanged;
    # built directly, so that ``seq`` is not advanced)
    coupled = None if clock is None else _CoupledRings(
        clock, n, alpha, np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, 0),
                                                pool_size=seq.pool_size))
    rng = np.random.default_rng(seq)
    Zt = data.inputs_t
    value, deriv = np.empty((n, Zt.shape[1])), np.empty((n, Zt.shape[1]))
    features = _all_features(X, data, value, deriv)
    jumps = np.zeros(n, dtype=np.int64)
    compile_once(_jump_events, (X, RingState(value, deriv, features, np.empty((1, Zt.shape[1]))),
                                data, alpha, beta, Rings(*[jumps[:0]] * 3), bounds, jumps),
                 "limits", X.dtype.name)
    bar.reset()
    batch = _EVENT_BATCH if beta == 0 else max(1, min(_EVENT_BATCH, int(_PARTNER_BATCH * beta)))
    rings = 0
    for k, t in enumerate(times):
        start = times[k - 1] if k else 0.0
        gap = t - start
        if coupled is None:
            remaining = rng.poisson(n * gap / alpha) if gap > 0 else 0
        else:
            ordered = coupled.rings(start, t)
            remaining = ordered.size
        if remaining:       # a fresh sum: no drift of the incremental update
            state = RingState(value, deriv, features, _cloud_predictor(X, data)[None, :])
        total = remaining
        while remaining:
            count = min(remaining, batch)
            who = rng.integers(0, n, size=count) if coupled is None else \
                ordered[total - remaining:total - remaining + count]
            if beta > 0:
                partner_counts = rng.poisson(1.0 / beta, size=count)
                partners = rng.integers(0, n, size=int(partner_counts.sum()))
            else:
                partner_counts = np.zeros(0, dtype=np.int64)
                partners = np.zeros(0, dtype=np.int64)
            bad = _jump_events(X, state, data, alpha, beta, Rings(who, partner_counts, partners),
                               bounds, jumps)
            if bad >= 0:
                raise DivergenceError(
                    rings + bad + 1, limit, f"in the time interval ({start:.4g}, {t:.4g}]: "
                    + _range_detail(bounds), kind="limit", unit="ring",
                    hint=f"the jump process itself blows up at alpha = {alpha:.3g}"
                    + (f", beta = {beta:.3g}" if beta else ""))
            rings += count
            remaining -= count
            bar.update(gap * count / total)
        snapshots[k] = X
        if not total:
            bar.update(gap)
    return jumps


def _bernoulli(X, data, times, constants, seq, activation, progress, divergence_factor,
               settings):
    """Discrete Bernoulli jump limit = RaM with N particles on the engine."""
    tau = constants["tau"]
    keep = tau / constants["alpha"]
    steps = np.rint(times / tau).astype(np.int64)
    # the engine takes an integer seed: derive one from this limit's stream
    try:
        result = simulate(data.inputs, data.targets[0], master_lr=tau, steps=int(steps[-1]),
                          keep_prob=keep, initial=X, variants=("ram",),
                          seed=int(seq.generate_state(1)[0]), activation=activation,
                          bias=data.bias, snapshot_steps=np.unique(steps),
                          loss_every=max(1, int(steps[-1])),
                          divergence_factor=divergence_factor, progress=progress)
    except DivergenceError as exc:
        raise DivergenceError(exc.step, "jump-bernoulli", "its particles or predictor left "
                              "the divergence bounds", kind="limit", unit="step",
                              time=exc.step * tau,
                              hint=f"the Bernoulli jump process itself blows up at tau = "
                              f"{tau:.3g}, alpha = {constants['alpha']:.3g}") from None
    where = np.searchsorted(result.snapshot_steps, steps)
    snapshots = result.snapshots["ram"][where]
    predictor = np.stack([_cloud_predictor(s, data) for s in snapshots])
    settings["keep"] = keep
    return LimitResult("jump-bernoulli", steps * tau, snapshots, predictor, None, settings)
