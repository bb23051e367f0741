"""The limits of one concrete network: plug-in constants, their cost, and one measured cell.

A network of width n, master learning rate τ and keep probability q has the effective constants
α_n = τ/q, β_n = (1 − q)/(nq) and τ_n = τ (Chizat, Marion & Yesbay, 2025). Every limit whose
constants are in range runs with them (:data:`meanfield_dropout.limits.LIMIT_CONSTANTS`); for
``jump-bernoulli`` the keep of the limit is τ/α_n = q, so it is RaM with N = n particles.

Cost guard. A candidate is left out, with the reason, when its estimated work exceeds a budget
or when it would need too much memory (the ``critical`` limit draws Poisson(1/β_n) partners per
ring, which for a large nq means gigabytes of partner indices). Both left-out cases are
close to a cheaper limit: ``critical`` tends to ``jump-poisson`` as β → 0 (its partner sum has
relative noise √β_n) and ``jump-bernoulli`` to ``jump-poisson`` as τ → 0.
"""
import math

import numpy as np

from meanfield_dropout.validation import check_int, check_keep_prob, check_positive
from meanfield_dropout.convergence import CellSettings, measure_distances
from meanfield_dropout.cost_model import (FLOWS, UnitCosts, dropout_seconds, limit_seconds,
                                          cell_seconds as measured_cell_seconds)
from meanfield_dropout.engine import DivergenceError
from meanfield_dropout.runtime.memory import announced
from meanfield_dropout.limit_sizes import _PARTNER_BATCH
from meanfield_dropout.limits import LIMITS, LimitConstants, limit_constants

__all__ = ["effective_constants", "estimate_costs", "candidate_limits", "measure_cell",
           "cell_seconds", "BUDGET_UNITS", "DEFAULT_BUDGET", "PARTNER_MEMORY"]

#: Default time budget of one limit in one cell (estimated seconds on one core).
DEFAULT_BUDGET = 120.0
#: Largest memory for the partner indices of one batch of critical rings (bytes).
PARTNER_MEMORY = 256 * 2 ** 20
#: The units of the budget rule (:func:`estimate_costs`, :func:`candidate_limits`), in seconds
#: of one core as ``benchmarks/bench_plugin_costs.py`` measured them before the engine's serial
#: kernels, with no cost per call. They decide which limits a cell runs, so they are part of
#: the definition of the cells of ``locate`` and ``map`` (their keys and results) and stay as
#: they are; the estimates of run times are :data:`meanfield_dropout.cost_model.REFERENCE`'s
#: (:func:`cell_seconds`).
BUDGET_UNITS = UnitCosts(engine_call=0.0, engine_step=1.2e-4, row_fixed=1.1e-6,
                         row_point=4.4e-8, row_entry=8e-11, limit_call=0.0, heun_step=2.4e-4,
                         heun_fixed=1.4e-6, heun_point=8.7e-8, heun_entry=2.0e-10,
                         ring_fixed=5e-6, ring_point=4.4e-8, ring_entry=1.12e-9, partner=4e-10)
#: Heun step of the flows here (error below 1e-4 of the predictor; the distances are ≥ 1e-3).
FLOW_DT = 0.05


def effective_constants(width, master_lr, keep_prob):
    """α_n, β_n, τ_n, the simplex point and the exponents of the power law through it.

    Parameters
    ----------
    width : int
        n ≥ 2.
    master_lr : float
        τ ∈ (0, 1] (the simplex needs −log τ ≥ 0).
    keep_prob : float
        q ∈ (0, 1].

    Returns
    -------
    dict
        ``alpha``, ``beta``, ``tau``, ``point`` = (log n, −log τ, −log q)/S and the exponents
        ``b_tau`` = −log τ/log n, ``b_keep`` = −log q/log n of the power law
        τ_m = m^(−b_tau), q_m = m^(−b_keep) that passes through (n, τ, q).
    """
    width = check_int(width, "width", low=2)
    tau = check_positive(master_lr, "master_lr")
    if tau > 1:
        raise ValueError(f"master_lr must be in (0, 1] (the simplex point needs -log tau >= 0), "
                         f"got {tau!r}")
    q = check_keep_prob(keep_prob)
    logs = np.array([math.log(width), -math.log(tau), -math.log(q)])
    return dict(alpha=tau / q, beta=(1 - q) / (width * q), tau=tau,
                point=tuple(float(u) for u in logs / logs.sum()),
                b_tau=float(logs[1] / logs[0]), b_keep=float(logs[2] / logs[0]))


def estimate_costs(width, master_lr, keep_prob, horizon, data_points, dim, limit_factor=1):
    """The budget rule's seconds of dropout and of each limit with plug-in constants (one
    core, in :data:`BUDGET_UNITS`).

    Returns
    -------
    dict
        ``dropout`` and every limit name → seconds; ``critical_memory`` → bytes of the
        partner indices drawn at once: a batch of rings, at least one ring's ~1/β_n (0 when
        β_n = 0).
    """
    n, tau, q, T = width, master_lr, keep_prob, horizon
    N = limit_factor * n
    alpha, beta = tau / q, (1 - q) / (n * q)
    plug_in = dict(alpha=alpha, beta=beta, tau=tau)
    out = {"dropout": dropout_seconds(n, tau, q, T, data_points, dim, BUDGET_UNITS)}
    # the flows run with N = n particles (measure_cell)
    out.update({name: limit_seconds(name, plug_in, n if name in FLOWS else N, T, data_points,
                                    dim, dt=FLOW_DT, costs=BUDGET_UNITS)
                for name in LIMITS if name != "critical"})
    if beta > 0:
        out["critical"] = limit_seconds("critical", plug_in, N, T, data_points, dim,
                                        dt=FLOW_DT, costs=BUDGET_UNITS)
        # the limit draws the partners of up to _PARTNER_BATCH rings' worth at once
        out["critical_memory"] = 8.0 * max(1.0 / beta, min(N * T / alpha / beta,
                                                           _PARTNER_BATCH))
    else:
        out["critical"], out["critical_memory"] = math.inf, 0.0
    return out


def candidate_limits(width, master_lr, keep_prob, horizon, data_points, dim, *,
                     budget=DEFAULT_BUDGET, limit_factor=1):
    """The candidate limits of a network with their plug-in constants, or why one is left out.

    Returns
    -------
    run : dict
        limit → constants ({alpha, beta, tau}) for the limits that run.
    skipped : dict
        limit → one-line reason.
    """
    c = effective_constants(width, master_lr, keep_prob)
    costs = estimate_costs(width, master_lr, keep_prob, horizon, data_points, dim,
                           limit_factor)
    run, skipped = {}, {}
    if costs["dropout"] > budget:
        raise ValueError(f"dropout at width {width} with tau={master_lr:.3g} needs "
                         f"{math.ceil(horizon / master_lr)} steps, about {costs['dropout']:.3g} s "
                         f"> budget {budget:g} s")
    for name in LIMITS:
        try:
            constants = limit_constants(name, alpha=c["alpha"], beta=c["beta"] or None,
                                        tau=c["tau"])
        except ValueError:
            skipped[name] = "its constants are out of range here (beta_n = 0 when q = 1)"
            continue
        if name == "critical" and costs["critical_memory"] > PARTNER_MEMORY:
            skipped[name] = (f"1/beta_n = {1 / c['beta']:.3g} partners per ring would need "
                             f"{costs['critical_memory'] / 2 ** 30:.2g} GiB; it equals "
                             f"jump-poisson up to O(sqrt(beta_n)) = {math.sqrt(c['beta']):.2g}")
            continue
        if costs[name] > budget:
            close = "jump-poisson" if name in ("critical", "jump-bernoulli") else "dropout"
            skipped[name] = (f"estimated {costs[name]:.3g} s > budget {budget:g} s"
                             + (f"; it is close to {close} here" if close != "dropout" else ""))
            continue
        run[name] = constants
    return run, skipped


def _flows_apart(width, master_lr, keep_prob, horizon, shape, limits, limit_factor):
    """Whether the flows run apart on N = n: when a second dropout run costs less than running
    them on N = ``limit_factor`` n."""
    costs = estimate_costs(width, master_lr, keep_prob, horizon, *shape, limit_factor)
    flows = sum(costs[k] for k in limits if k in FLOWS)
    others = sum(costs[k] for k in limits if k not in FLOWS)
    return (limit_factor > 1 and flows > 0 and others > 0
            and costs["dropout"] < (limit_factor - 1) * flows)


def cell_seconds(width, master_lr, keep_prob, horizon, shape, limits, limit_factor=4, *,
                 n_times=9, w2_particles=64):
    """Estimated seconds of :func:`measure_cell` with these limits (one core): its calls of
    :func:`~meanfield_dropout.convergence.measure_distances`, each priced by
    :func:`meanfield_dropout.cost_model.cell_seconds`."""
    seconds = 0.0
    for group, particles in _groups(width, master_lr, keep_prob, horizon, shape, limits,
                                    limit_factor):
        steps = max([round(horizon / master_lr)]
                    + [round(horizon / c["tau"]) for k, c in group.items()
                       if k == "jump-bernoulli"])
        seconds += measured_cell_seconds(
            width, keep_prob, steps, group, horizon, limit_particles=particles,
            n_times=n_times, w2_particles=min(width, particles, w2_particles),
            data_shape=shape, dt=FLOW_DT)
    return seconds


def _groups(width, master_lr, keep_prob, horizon, shape, limits, limit_factor):
    """[(limits, particles)] of the calls of :func:`measure_cell`: the flows apart on N = n
    when that is cheaper (:func:`_flows_apart`), the other limits on N = ``limit_factor`` n."""
    if _flows_apart(width, master_lr, keep_prob, horizon, shape, limits, limit_factor):
        return [({k: v for k, v in limits.items() if k in FLOWS}, width),
                ({k: v for k, v in limits.items() if k not in FLOWS}, limit_factor * width)]
    return [(dict(limits), limit_factor * width)]


def measure_cell(width, master_lr, keep_prob, limits, horizon, seed, data, n_times=9,
                 w2_particles=64, limit_factor=4):
    """One repeat: dropout at (n, τ, q) against ``limits`` (plug-in constants), from one seed.

    A module-level function for worker processes. Wraps
    :func:`meanfield_dropout.convergence.measure_distances` (the only measurement path) and
    keeps what the callers need. The jump limits run with N = ``limit_factor`` × n particles
    that start as copies of dropout's (``tile_limit``): the same empirical measure at t = 0,
    and a jump limit's own sampling noise √``limit_factor`` times smaller than dropout's, so
    that a stochastic limit is not farther from dropout than a deterministic one by its own
    noise. The flows (:data:`FLOWS`) are deterministic, so copies move together and N = n gives
    the same cloud: when that is cheaper than a second dropout run, they run with N = n in a
    second call with the same seed (the same initial particles and dropout run). The flows'
    Heun step is :data:`FLOW_DT`.

    Returns
    -------
    dict
        ``times`` (T,), ``dropout_loss`` (T,), ``diverged`` (None or the message) and, per
        limit, ``predictor`` and ``w2`` arrays (T,) (NaN when the run diverged).
    """
    inputs, targets = data
    constants = LimitConstants(alpha=master_lr / keep_prob,
                               beta=(1 - keep_prob) / (width * keep_prob), tau=master_lr)
    times = np.linspace(0.0, horizon, n_times)
    out = {}
    try:
        for group, particles in _groups(width, master_lr, keep_prob, horizon, inputs.shape,
                                        limits, limit_factor):
            if not group:
                continue
            # the same seed: the same initial particles and the same dropout run
            settings = CellSettings(group, horizon, constants, n_times=n_times,
                                    data=(inputs, targets), w2_particles=w2_particles,
                                    dt=FLOW_DT, tile_limit=True)
            with announced():       # locate and map announce their cells
                out.update(measure_distances(width, master_lr, keep_prob, settings,
                                             seed=seed, limit_particles=particles))
    except DivergenceError as exc:
        nan = np.full(n_times, np.nan)
        return dict(times=times, dropout_loss=nan, diverged=str(exc),
                    **{name: dict(predictor=nan, w2=nan) for name in limits})
    return dict(times=out["times"], dropout_loss=out["dropout_loss"], diverged=None,
                **{name: dict(predictor=out[name]["predictor"], w2=out[name]["w2"])
                   for name in limits})
