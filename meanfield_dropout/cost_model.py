"""Seconds of one core of the runs a convergence cell makes: the cost model of
:func:`~meanfield_dropout.convergence.measure_distances` (and so of
:func:`~meanfield_dropout.convergence.estimate_cost`, the scans, the grid, the five-phase
check and the phase finder's estimates).

Every constant is in seconds on one core of the reference machine (Intel Xeon, 2 cores,
OpenBLAS SkylakeX kernels, one Numba thread, float64, ``tanh``), measured by
``benchmarks/bench_cell_costs.py`` on the ``toy`` problem (m = 40, d = 4), except the costs
per entry of the data (``*_entry``), measured on MNIST 4 vs 7 (d = 49 and 784) by
``benchmarks/bench_plugin_costs.py``. They are fixed numbers, so an estimate never depends on
the speed or load of the machine it is made on.

A unit's cost is a fixed part plus, per neuron (or particle), ``m (point + entry p)``,
p = d + 1 its entries: ``point`` the activation's share per data point, ``entry`` the
products' with the data (:class:`UnitCosts`).
"""
import math
from typing import NamedTuple

from .validation import renamed_keywords


class UnitCosts(NamedTuple):
    """Seconds of the units of the runs: the engine's, the flows' and the jump limits'.

    Attributes
    ----------
    engine_call, engine_step : float
        One call of :func:`~meanfield_dropout.engine.simulate` (plan, workspace, recording)
        besides its steps; one step besides its neurons (the mask draw, the kernel calls).
    row_fixed, row_point, row_entry : float
        One neuron of an engine step (forward and backward pass).
    limit_call : float
        One call of :func:`~meanfield_dropout.limits.simulate_limit` besides its steps or
        rings.
    heun_step : float
        One Heun step of a flow besides its particles.
    heun_fixed, heun_point, heun_entry : float
        One particle of one Heun step (two drifts).
    ring_fixed, ring_point, ring_entry : float
        One ring of the superposed clock of the jump limits (plain loops, no BLAS).
    partner : float
        One partner of a critical ring, per data point.
    """

    engine_call: float
    engine_step: float
    row_fixed: float
    row_point: float
    row_entry: float
    limit_call: float
    heun_step: float
    heun_fixed: float
    heun_point: float
    heun_entry: float
    ring_fixed: float
    ring_point: float
    ring_entry: float
    partner: float


#: The units on the reference machine. A Heun step's cost besides its particles measures
#: below 1 µs (``heun_step`` 0).
REFERENCE = UnitCosts(engine_call=7.8e-4, engine_step=1.2e-6, row_fixed=9.5e-8,
                      row_point=3.4e-8, row_entry=8e-11, limit_call=3.6e-4, heun_step=0.0,
                      heun_fixed=1.25e-7, heun_point=6.9e-8, heun_entry=2.0e-10,
                      ring_fixed=1.6e-7, ring_point=1.4e-8, ring_entry=1.12e-9,
                      partner=2.9e-10)
#: One dropout keep draw read by a coupled clock (NumPy's uniform, the comparison and the
#: ring indices).
UNIFORM = 6e-9
#: One distance of a cell at one grid time, besides its clouds: the predictor error and the
#: W2 call.
DISTANCE = 1.26e-4
#: One particle of a cloud's predictor, per data point.
PREDICT = 1.85e-8
#: The exact W2 of k points (assignment): ``W2_SQUARE k² + W2_CUBE k³``.
W2_SQUARE, W2_CUBE = 3e-8, 3.7e-11
#: One cell, besides its runs and distances (its plan, data, seeds and result).
CELL = 5.6e-4

#: The deterministic limits: Heun steps of a flow.
FLOWS = ("wgf", "penalized-wgf")


def _row(costs, data_points, dim):
    return costs.row_fixed + data_points * (costs.row_point + costs.row_entry * (dim + 1))


def engine_seconds(steps, rows, data_points, dim, costs=REFERENCE):
    """Seconds of one engine run of ``steps`` steps with ``rows`` neurons per step on
    average (summed over its variants), in the units ``costs``."""
    return costs.engine_call + steps * (costs.engine_step + rows * _row(costs, data_points, dim))


def dropout_seconds(width, master_lr, keep_prob, horizon, data_points, dim, costs=REFERENCE):
    """Estimated seconds of dropout at (n, τ, q) over [0, T]: ⌈T/τ⌉ steps of about q n + 1
    kept neurons each."""
    return engine_seconds(math.ceil(horizon / master_lr), keep_prob * width + 1,
                          data_points, dim, costs)


def limit_seconds(limit, constants, particles, horizon, data_points, dim, *, dt,
                  costs=REFERENCE):
    """Estimated seconds of the limit ``limit`` with ``constants`` ({alpha, beta, tau}) and
    N = ``particles`` over [0, T].

    A flow is ⌈T/dt⌉ Heun steps of N particles; a Poisson or critical limit N T/α rings (and
    1/β partners per critical ring); the Bernoulli limit ⌈T/τ⌉ RaM steps of N particles with
    keep q = τ/α (about (q + 1) N/2 neurons per step: the kept rows and the unmasked forward
    pass). In the units ``costs``.
    """
    m, p, N, c = data_points, dim + 1, particles, costs
    if limit in FLOWS:
        return c.limit_call + math.ceil(horizon / dt) * (
            c.heun_step + N * (c.heun_fixed + m * (c.heun_point + c.heun_entry * p)))
    if limit == "jump-bernoulli":
        keep = constants["tau"] / constants["alpha"]
        return c.limit_call + math.ceil(horizon / constants["tau"]) * (
            c.engine_step + _row(c, m, dim) * (keep * N + N) / 2)
    rings = N * horizon / constants["alpha"]
    ring = c.ring_fixed + m * (c.ring_point + c.ring_entry * p)
    if limit == "critical":
        ring += c.partner * m / constants["beta"]
    return c.limit_call + rings * ring


def predictor_seconds(particles, data_points):
    """Seconds of one cloud's predictor on the data."""
    return PREDICT * particles * data_points


def w2_seconds(points):
    """Seconds of the exact W2 (assignment) between two clouds of ``points`` particles (POT's
    solvers, ``network-simplex`` and ``sliced``, are counted the same)."""
    return W2_SQUARE * points ** 2 + W2_CUBE * points ** 3


@renamed_keywords(w2_points="w2_particles")
def distance_seconds(width, particles, w2_particles, data_points):
    """Seconds of one distance at one grid time: the predictors of the dropout cloud (n
    particles) and of the limit's (N), their RMS difference and the W2 of ``w2_particles``
    particles."""
    return DISTANCE + predictor_seconds(width + particles, data_points) + w2_seconds(w2_particles)


@renamed_keywords(w2_points="w2_particles")
def cell_seconds(width, keep_prob, dropout_steps, limits, horizon, *, limit_particles, n_times,
                 w2_particles, data_shape, dt, coupled=(), clock_coupled=()):
    """Estimated seconds of one convergence cell
    (:func:`~meanfield_dropout.convergence.measure_distances`).

    Parameters
    ----------
    width, keep_prob : int, float
        n and q_n of dropout.
    dropout_steps : int
        The steps of the dropout run (the last step any limit is compared at).
    limits : dict
        {limit: constants {alpha, beta, tau}}.
    horizon : float
        T.
    limit_particles, n_times, w2_particles : int
        N, the grid times and the particles of each W2.
    data_shape : tuple of int
        (m, d): the data's points and input dimension.
    dt : float
        Heun step of the flows.
    coupled : sequence of str
        Systems coupled to dropout: ``ram`` and ``gd`` run in dropout's engine run (q n + 1
        and n neurons per step), ``jump-bernoulli`` is a second engine run of its own steps.
    clock_coupled : sequence of str
        Limits whose clocks read dropout's keep draws (one per neuron and dropout step).

    Returns
    -------
    float
        Seconds of one core on the reference machine: the cell's fixed cost, the engine run,
        each limit, each distance (a limit at a grid time) and dropout's loss at each time.
    """
    m, dim = data_shape
    kept = keep_prob * width + 1
    rows = kept + sum(kept if name == "ram" else width for name in coupled
                      if name in ("ram", "gd"))
    seconds = CELL + engine_seconds(dropout_steps, rows, m, dim)
    seconds += n_times * predictor_seconds(width, m)
    for name, constants in limits.items():
        seconds += limit_seconds(name, constants, limit_particles, horizon, m, dim, dt=dt)
        seconds += n_times * distance_seconds(width, limit_particles, w2_particles, m)
        if name in clock_coupled:
            seconds += UNIFORM * width * dropout_steps
    if "jump-bernoulli" in coupled:
        c = limits["jump-bernoulli"]
        seconds += engine_seconds(round(horizon / c["tau"]), c["tau"] / c["alpha"] * width + 1,
                                  m, dim)
    return seconds
