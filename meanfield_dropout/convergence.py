"""Measured convergence of finite-width dropout to the limit dynamics of its phase.

:func:`measure_distances` runs dropout at one width n with (τ_n, q_n) and the requested limits
(:mod:`meanfield_dropout.limits`) from the same initial particles, and returns their distances
on a common time grid. :func:`convergence_study` repeats this over widths and seeds and fits
log–log slopes (:class:`ConvergenceStudy`; drawn by
:func:`meanfield_dropout.plots.convergence_figure`). The limit constants are plain numbers here;
scalings given as expressions of n, classified into their phase, are studied by
:mod:`phase_diagram.convergence`.

Time. Each grid time t is rounded to a dropout step, k = round(t/τ_n), and the
continuous-time limits are simulated at the exact dropout time k τ_n, so both sides of every
distance are at the same time. The Bernoulli jump limit runs in steps of its own τ, so for
``jump-bernoulli`` t is rounded to the step k = round(t/τ) and dropout and the limit are both
read at that step k (in the Bernoulli phase time is the step index, and τ_n → τ).

Distances, per grid time:

``predictor``  sqrt(mean_j (f_n(t, z_j) − ∫φ(·, z_j) dμ_t)²), the RMS predictor error on the
               training inputs. Primary metric: it is an average over particles, so its
               sampling error is O(N^{-1/2}) whatever the particle dimension p, and with shared
               initial particles the t = 0 error is exactly 0.
``w2``         W2 between the dropout cloud and the limit cloud, computed exactly
               (assignment) between random subsets of k = min(n, N, ``w2_particles``)
               particles. When N = n the subsets use the same indices, so W2(0) = 0; otherwise
               the subsets are independent samples and W2 has a statistical floor of order
               k^{-1/p} (p = 1 + d parameters per particle), which hides the dynamical error:
               this is why the predictor error is the phase-detection metric.
``coupled_rms`` (optional) the paper's RMS distance sqrt(mean_i |x_i − x'_i|²) between dropout
               and coupled finite-width variants run from the same initialisation and masks
               (``ram`` shares dropout's mask; ``gd`` is no dropout), and, for
               ``jump-bernoulli``, the Bernoulli jump particle system with N = n particles
               (RaM with step τ and keep q = τ/α) driven by dropout's mask uniforms: dropout
               keeps neuron i at step k when U_ik < q_n, the jump system when U_ik < q (the
               maximal coupling of the two clocks; with τ_n = τ, q_n = q it equals ``ram``).

``clock_coupling`` drives the ``jump-poisson`` and ``critical`` limits by dropout's own keep
draws (:class:`~meanfield_dropout.limits.DropoutClock`: a particle rings in a step when
dropout's uniform falls below 1 − exp(−τ_n/α), dropout keeps it when below q_n), each limit
keeping its exact law; with the shared initial particles the distance then measures the
difference of the dynamics rather than two independent noises. A coupled distance that falls
proves convergence in law; a wrong limit's distance does not fall whatever the coupling.

The limit uses N = ``limit_particles`` particles (default N = n). The first min(n, N) of them
are dropout's initial particles; any extra ones are fresh draws from μ₀.

No silent results (:mod:`meanfield_dropout.convergence_plan`): a run of a cell (dropout, a
coupled variant, a limit) whose parameters or predictor leave ``divergence_factor`` × their
initial scale (default 10^6), or stop being finite, raises
:class:`~meanfield_dropout.engine.DivergenceError` with its step, never giving a distance; a
horizon that would run no step is refused with the smallest valid one; memory is estimated
and checked, and long runs are announced, before anything runs.
"""
import functools

import numpy as np
from tqdm.auto import tqdm

from .runtime import results, tables
from .validation import (check_int, check_keep_prob, check_positive, renamed_keywords,
                         seed_record, seed_sequence)
from .network import init_particles, network_data
from .convergence_plan import (CLOCK_COUPLED, COUPLED_VARIANTS, METRICS,  # noqa: F401
                               DEFAULT_DATA, CellSettings, cell_steps, check_cell,
                               check_horizon, in_context, make_plan, step_lengths)
from .engine import DivergenceError, simulate
from .limits import LIMITS, DropoutClock, LimitConstants, _cloud_predictor, simulate_limit
from .runtime.memory import announce_cost, format_bytes, warn_long_run
from .metrics import coupled_rms, predictor_distance, wasserstein2
from .stats import fit_slopes

def estimate_cost(width, master_lr, keep_prob, settings, *, limit_particles=None):
    """Estimated memory and seconds of :func:`measure_distances` with the same arguments.

    Raises the errors :func:`measure_distances` would raise before running (bad arguments, a
    horizon that runs no step, a cell that would not fit in memory).

    Returns
    -------
    nbytes, seconds : float
        Bytes the cell allocates at its peak, and its seconds of one core on the reference
        machine (:func:`meanfield_dropout.cost_model.cell_seconds`: fixed numbers, not this
        machine's speed; rough estimates, within a small factor).
    """
    width = check_int(width, "width", low=1)
    limit_particles = width if limit_particles is None else \
        check_int(limit_particles, "limit_particles", low=1)
    plan = make_plan(settings)
    return check_cell(plan, width, check_positive(master_lr, "master_lr"),
                      check_keep_prob(keep_prob), limit_particles)


def measure_distances(width, master_lr, keep_prob, settings, *, seed, limit_particles=None):
    """Distances between dropout at width n and the requested limit dynamics over [0, T].

    The measurement of the phase-diagram scans' default cell function
    (:mod:`phase_diagram.scan.cell_functions`).

    Parameters
    ----------
    width : int
        n, the width of the dropout network.
    master_lr : float
        τ_n, the master learning rate of dropout.
    keep_prob : float
        q_n ∈ (0, 1], dropout's keep probability.
    settings : CellSettings
        The limits and their constants, the horizon T, the grid, the data and the options of
        the cell (:class:`~meanfield_dropout.convergence_plan.CellSettings`).
    seed : int or numpy.random.SeedSequence
        Root seed: initialisation, dropout masks, each limit's stream and the W2 subsets are
        spawned from it (a limit's stream does not depend on which other limits run; the
        same seed, or the same ``SeedSequence`` passed again, gives the same numbers).
    limit_particles : int, optional
        N, the particle count of the limits (default n).

    Raises
    ------
    ValueError
        For a bad argument, or a horizon that runs no step (naming the smallest valid one),
        before anything runs; :class:`~meanfield_dropout.runtime.memory.MemoryLimitError` for a cell
        that would not fit in memory. A cell estimated (:func:`estimate_cost`) above
        :data:`~meanfield_dropout.runtime.memory.ANNOUNCE_SECONDS` prints its estimate first.
    DivergenceError
        When dropout, a coupled variant or a limit leaves its divergence bounds
        (``divergence_factor`` × its initial scales, or non-finite): with the step and the
        cell's width and hyperparameters. A diverged run is never measured as a distance.

    Returns
    -------
    dict
        ``times`` (T,), ``width``, ``master_lr``, ``keep_prob``, ``limit_particles``,
        ``horizon``, ``activation``, ``seed`` (its JSON record), ``dropout_steps`` (T,),
        ``dropout_loss`` (T,), ``dropout_motion`` (T,) the predictor distance of dropout to
        its own initial network (exactly 0 while no neuron has been kept) and, for each limit
        name, a dict with ``predictor`` (T,), ``w2`` (T,), ``steps`` (T,) the dropout steps
        compared, ``times`` (T,) the limit times of
        those steps (k τ_n; k τ for ``jump-bernoulli``), ``limit_loss`` (T,) and the
        constants; with ``coupled``, ``coupled_rms`` = {variant: (T,)}. Values are numbers,
        strings and arrays, so the dict can be stored by :func:`meanfield_dropout.runtime.results.save`.
    """
    width = check_int(width, "width", low=1)
    limit_particles = width if limit_particles is None else \
        check_int(limit_particles, "limit_particles", low=1)
    plan = make_plan(settings)
    master_lr, keep_prob = check_positive(master_lr, "master_lr"), check_keep_prob(keep_prob)
    _, seconds = check_cell(plan, width, master_lr, keep_prob, limit_particles)
    what = f"measure_distances at width {width}"
    warn_long_run(seconds, what, "use a shorter horizon or smaller widths")
    announce_cost(seconds, what)
    return _measure(plan, width, master_lr, keep_prob, limit_particles, seed)


def _measure(plan, width, master_lr, keep_prob, limit_particles, seed):
    """The distances of :func:`measure_distances` for validated arguments.

    A run of the cell that diverges (dropout, a coupled variant or a limit: non-finite, or
    beyond ``divergence_factor`` × its initial scales) raises :class:`DivergenceError` with its
    step and the cell's width and hyperparameters; it is never measured as a distance.
    """
    inputs, targets, activation = plan.inputs, plan.targets, plan.activation
    requests, chunk_steps, progress = plan.limits, plan.chunk_steps, plan.progress
    engine_coupled = tuple(name for name in plan.coupled if name != "jump-bernoulli")
    dim = inputs.shape[1]
    data = network_data(inputs, targets, activation=activation)
    context = f"width {width}, master_lr {master_lr:.4g}, keep_prob {keep_prob:.4g}"

    init_seq, extra_seq, dropout_seq, w2_seq, *limit_seqs = seed_sequence(seed).spawn(
        4 + len(LIMITS))
    X0 = init_particles(width, dim, seed=init_seq)
    tiled = plan.tile_limit and limit_particles % width == 0
    if limit_particles <= width:
        X0_limit = X0[:limit_particles]
    elif tiled:         # copies of dropout's particles: the same empirical measure at t = 0
        X0_limit = np.tile(X0, (limit_particles // width, 1))
    else:
        X0_limit = np.vstack([X0, init_particles(limit_particles - width, dim, seed=extra_seq)])

    times = np.linspace(0.0, plan.horizon, plan.n_times)
    schedule = cell_steps(plan, master_lr)
    step_length, steps_for = schedule.lengths, schedule.limits
    cont_steps, all_steps = schedule.dropout, schedule.recorded
    total = int(all_steps[-1])
    # one integer seed for both runs below: the same uniforms U drive their masks
    mask_seed = int(dropout_seq.generate_state(1)[0])
    try:
        run = simulate(inputs, targets, master_lr=master_lr, steps=total, keep_prob=keep_prob,
                       initial=X0, variants=("dropout",) + engine_coupled, seed=mask_seed,
                       activation=activation, snapshot_steps=all_steps,
                       loss_every=max(total, 1), chunk_steps=chunk_steps,
                       divergence_factor=plan.divergence_factor, progress=progress)
    except DivergenceError as exc:
        raise in_context(exc, context) from None
    def cloud(variant, step):
        return run.snapshots[variant][np.searchsorted(run.snapshot_steps, step)]

    def predictor(X):
        return _cloud_predictor(X, data)

    def loss(f):
        return 0.5 * float(np.mean((f - targets) ** 2))

    k = min(width, limit_particles, plan.w2_particles)
    w2_rng = np.random.default_rng(w2_seq)
    drop_idx = np.sort(w2_rng.choice(width, k, replace=False))
    limit_idx = drop_idx if limit_particles == width or tiled else \
        np.sort(w2_rng.choice(limit_particles, k, replace=False))
    dropout_predictors = [predictor(cloud("dropout", s)) for s in cont_steps]
    initial = predictor(X0)
    out = dict(times=times, width=width, master_lr=master_lr, keep_prob=keep_prob,
               limit_particles=limit_particles, horizon=plan.horizon, activation=activation,
               seed=seed_record(seed), dropout_steps=cont_steps,
               dropout_loss=np.array([loss(f) for f in dropout_predictors]),
               dropout_motion=np.array([predictor_distance(f, initial)
                                        for f in dropout_predictors]))
    for name, constants in requests.items():
        steps = steps_for[name]
        # the limit at the exact time of the dropout step it is compared with
        clock = DropoutClock(mask_seed, master_lr) if plan.clock_coupling and \
            name in CLOCK_COUPLED else None
        try:
            result = simulate_limit(name, data, LimitConstants(**constants),
                                    times=steps * step_length[name], initial=X0_limit,
                                    seed=limit_seqs[LIMITS.index(name)], dt=plan.dt,
                                    divergence_factor=plan.divergence_factor,
                                    progress=progress, clock=clock)
        except DivergenceError as exc:
            raise in_context(exc, context) from None
        entry = dict(constants, times=result.times, steps=steps,
                     predictor=np.empty(plan.n_times), w2=np.empty(plan.n_times),
                     limit_loss=np.array([loss(f) for f in result.predictor]))
        for t, step in enumerate(steps):
            X = cloud("dropout", step)
            entry["predictor"][t] = predictor_distance(predictor(X), result.predictor[t])
            entry["w2"][t] = wasserstein2(X[drop_idx], result.snapshots[t][limit_idx],
                                          method=plan.w2_method)
        out[name] = entry
    if plan.coupled:
        out["coupled_rms"] = {v: np.array([coupled_rms(cloud("dropout", s), cloud(v, s))
                                           for s in cont_steps]) for v in engine_coupled}
    if "jump-bernoulli" in plan.coupled:
        c, steps = requests["jump-bernoulli"], steps_for["jump-bernoulli"]
        # same seed, hence the same uniforms U: the masks are U < q instead of U < q_n
        try:
            jump = simulate(inputs, targets, master_lr=c["tau"], steps=int(steps[-1]),
                            keep_prob=c["tau"] / c["alpha"], initial=X0, variants=("ram",),
                            seed=mask_seed, activation=activation, snapshot_steps=steps,
                            loss_every=max(int(steps[-1]), 1), chunk_steps=chunk_steps,
                            divergence_factor=plan.divergence_factor, progress=progress)
        except DivergenceError as exc:
            raise in_context(exc, context + " (coupled Bernoulli jump system)") from None
        out["coupled_rms"]["jump-bernoulli"] = np.array([
            coupled_rms(cloud("dropout", s),
                        jump.snapshots["ram"][np.searchsorted(jump.snapshot_steps, s)])
            for s in steps])
    return out


@results.result_class
class ConvergenceStudy:
    """Distances from dropout to its limits over widths and repeats (:func:`convergence_study`).

    Attributes
    ----------
    label : str
        Title of the study (plots).
    widths : ndarray of int, shape (W,)
    times : ndarray, shape (T,)
        Grid times in [0, T].
    master_lr, keep_prob : ndarray, shape (W,)
        τ_n and q_n at each width.
    limits : dict
        limit → its constants {alpha, beta, tau}.
    distances : dict
        {series: {metric: (R, W, T) array}}: series are the limit names (metrics ``predictor``
        and ``w2``) and ``coupled_rms/<variant>`` (metric ``coupled_rms``).
    settings : dict
        ``data`` (:func:`~meanfield_dropout.data.data_label`), ``repeats``, ``horizon``,
        ``seed``, ``activation``, ``n_times``, ``limit_factor``.
    """

    label: str
    widths: np.ndarray
    times: np.ndarray
    master_lr: np.ndarray
    keep_prob: np.ndarray
    limits: dict
    distances: dict
    settings: dict

    def to_frame(self):
        """The distances as a tidy table (pandas, the ``table`` extra): one row per series,
        metric, width, repeat and grid time.

        Columns ``series`` (a limit, or ``coupled_rms/<variant>``), ``metric``, ``width``,
        ``master_lr`` τ_n, ``keep_prob`` q_n, ``repeat``, ``time``, ``distance`` and the
        study's ``label`` and ``data``.
        """
        data = self.settings.get("data")
        return tables.frame(
            dict(label=self.label, data=data, series=key, metric=metric, width=int(n),
                 master_lr=float(self.master_lr[w]), keep_prob=float(self.keep_prob[w]),
                 repeat=r, time=float(t), distance=float(values[r, w, i]))
            for key, metrics in self.distances.items() for metric, values in metrics.items()
            for w, n in enumerate(self.widths) for r in range(values.shape[0])
            for i, t in enumerate(self.times))

    @functools.cached_property
    def fits(self):
        """{series: {metric: :func:`~meanfield_dropout.stats.fit_slopes` of sup over t > 0}}."""
        return {key: {metric: fit_slopes(self.widths, np.max(arr[:, :, 1:], axis=2))
                      for metric, arr in metrics.items()}
                for key, metrics in self.distances.items()}


@renamed_keywords(limit_particles_factor="limit_factor")
def convergence_study(master_lr_scaling, keep_prob_scaling, widths, settings, *, repeats=3,
                      seed=0, limit_factor=1, label="", progress=True):
    """Distances from dropout to each limit as functions of the width, with log–log slopes.

    Parameters
    ----------
    master_lr_scaling, keep_prob_scaling : callable
        The scaling: n ↦ τ_n (master learning rate) and n ↦ q_n (keep probability) at width
        n (e.g. ``Scaling.tau`` and ``Scaling.keep`` from :mod:`phase_diagram.theory.scalings`).
    widths : sequence of int
        At least two distinct widths.
    settings : CellSettings
        The limits, their constants, the horizon, grid, data and options of every cell, as in
        :func:`measure_distances`.
    repeats : int
        Independent seeds per width (≥ 1; the slope interval needs ≥ 2).
    seed : int
        Root seed; repeat r at width n uses ``SeedSequence(seed, spawn_key=(r, n))``.
    limit_factor : int
        The limits run with N = ``limit_factor`` × n particles (n the width).
    label : str
        Title of the study (plots).
    progress : bool
        ``tqdm`` bar over the cells.

    Returns
    -------
    ConvergenceStudy
    """
    if not (callable(master_lr_scaling) and callable(keep_prob_scaling)):
        raise ValueError("master_lr_scaling and keep_prob_scaling must be callables n -> value")
    widths = sorted({check_int(n, "widths entry", low=1) for n in widths})
    if len(widths) < 2:
        raise ValueError("widths must hold at least two distinct widths")
    repeats = check_int(repeats, "repeats", low=1)
    seed = check_int(seed, "seed", low=0)
    factor = check_int(limit_factor, "limit_factor", low=1)
    plan = make_plan(settings)
    per_width = [(n, check_positive(master_lr_scaling(n), f"master_lr_scaling(n={n})"),
                  check_keep_prob(keep_prob_scaling(n), f"keep_prob_scaling(n={n})"))
                 for n in widths]
    # every cell is checked (steps, memory) before the first one runs
    check_horizon(plan.horizon, step_lengths(plan, {n: tau_n for n, tau_n, _ in per_width}))
    costs = [check_cell(plan, n, tau_n, keep_n, factor * n) for n, tau_n, keep_n in per_width]
    what = (f"the convergence study {label!r} ({repeats} repeats x {len(widths)} widths, "
            f"largest cell {format_bytes(max(b for b, _ in costs))})")
    seconds = repeats * sum(s for _, s in costs)
    warn_long_run(seconds, what,
                  "use a shorter horizon, smaller widths or fewer repeats")
    announce_cost(seconds, what)
    series = {}
    times = None
    bar = tqdm(total=repeats * len(widths), disable=not progress, desc=label or "converge",
               unit="cell")
    for w, (n, tau_n, keep_n) in enumerate(per_width):
        for r in range(repeats):
            cell = _measure(plan, n, tau_n, keep_n, factor * n,
                            np.random.SeedSequence(seed, spawn_key=(r, n)))
            times = cell["times"]
            rows = {name: {m: cell[name][m] for m in METRICS} for name in plan.limits}
            for variant, values in cell.get("coupled_rms", {}).items():
                rows[f"coupled_rms/{variant}"] = {"coupled_rms": values}
            for key, metrics in rows.items():
                for metric, values in metrics.items():
                    series.setdefault(key, {}).setdefault(
                        metric, np.empty((repeats, len(widths), plan.n_times)))[r, w] = values
            bar.update()
    bar.close()
    return ConvergenceStudy(
        label=label, widths=np.array(widths), times=times,
        master_lr=np.array([p[1] for p in per_width]),
        keep_prob=np.array([p[2] for p in per_width]), limits=plan.limits,
        distances=series,
        settings=dict(data=plan.data, repeats=repeats, horizon=plan.horizon, seed=seed,
                      activation=plan.activation, n_times=plan.n_times,
                      limit_factor=factor))
