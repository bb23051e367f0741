"""Measured convergence of finite-width dropout to the limit dynamics of its phase.

:func:`measure_distances` runs dropout at one width n with (τ_n, q_n) and the requested limits
(:mod:`meanfield_dropout.limits`) from the same initial particles, and returns their distances
on a common time grid. :func:`convergence_study` repeats this over widths and seeds and fits
log–log slopes; :func:`plot_convergence` draws the result.

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

The limit uses N = ``limit_particles`` particles (default N = n). The first min(n, N) of them
are dropout's initial particles; any extra ones are fresh draws from μ₀.
"""
import functools
import math

import numpy as np
from tqdm.auto import tqdm

from ._validate import (check_array, check_choice, check_int, check_keep_prob, check_positive,
                        seed_sequence)
from .activations import activation_code
from .data import Dataset, teacher_student
from .engine import init_particles, simulate
from .limits import DEFAULT_DT, LIMITS, _cloud_predictor, limit_constants, simulate_limit
from .metrics import coupled_rms, predictor_distance, wasserstein2
from .stats import fit_slopes

#: Systems that can be coupled to the dropout run: finite-width variants and the Bernoulli
#: jump particle system (N = n).
COUPLED_VARIANTS = ("ram", "gd", "jump-bernoulli")
#: Distances reported per limit.
METRICS = ("predictor", "w2")

#: One scaling per phase for the five-phase check: (τ_n, q_n) expressions, horizon, the
#: predicted limit and wrong limits with constants for them (the phase's own constants are
#: read from the scaling). τ_n, q_n keep every cell at n ≤ 1600 cheap; the constants are
#: chosen so that the limits are well apart (e.g. the Bernoulli step τ = 1 rather than the
#: paper's 0.5, whose limit is within 0.015 of the WGF on this problem).
PHASE_STUDIES = {
    "wgf": dict(tau="0.5*n**-0.5", keep="0.5", horizon=2.0,
                wrong={"jump-poisson": dict(alpha=2.0)}),
    "penalized-wgf": dict(tau="n**-1.5", keep="n**-1", horizon=1.0,
                          wrong={"wgf": {}}),
    "jump-poisson": dict(tau="1.5*n**-0.5", keep="0.5*n**-0.5", horizon=2.0,
                         wrong={"wgf": {}}),
    "jump-bernoulli": dict(tau="1.0", keep="0.3", horizon=4.0,
                           wrong={"wgf": {}}, coupled=("ram", "gd")),
    "critical": dict(tau="n**-1", keep="n**-1", horizon=2.0,
                     wrong={"jump-poisson": {}, "wgf": {}}),
}


@functools.lru_cache(maxsize=1)
def default_data():
    """The default smooth problem: teacher–student data, d = 4, m = 40, 4 ReLU teacher units.

    Small enough that a width-2000 cell of :func:`measure_distances` takes about a second.
    """
    return teacher_student(dim=4, data_points=40, teacher_width=4, seed=0)


def _data_arrays(data):
    if data is None:
        data = default_data()
    if isinstance(data, Dataset):
        return data.inputs, data.targets
    try:
        inputs, targets = data
    except (TypeError, ValueError):
        raise ValueError("data must be a Dataset or a pair (inputs, targets)") from None
    return inputs, targets


def _limit_requests(limits, alpha, beta, tau):
    """{name: validated constants} from a name, a list of names or {name: overrides}."""
    if isinstance(limits, str):
        limits = [limits]
    if isinstance(limits, dict):
        items = list(limits.items())
    else:
        items = [(name, {}) for name in limits]
    if not items:
        raise ValueError("limits must name at least one limit")
    out = {}
    for name, overrides in items:
        check_choice(name, "limit", LIMITS)
        base = dict(alpha=alpha, beta=beta, tau=tau)
        base.update(overrides or {})
        out[name] = limit_constants(name, **base)
    return out


def measure_distances(width, master_lr, keep_prob, limits, *, alpha, beta, tau, horizon, seed,
                      data=None, activation="tanh", n_times=5, limit_particles=None,
                      **options):
    """Distances between dropout at width n and the requested limit dynamics over [0, T].

    Parameters
    ----------
    width : int
        n, the width of the dropout network.
    master_lr : float
        τ_n, the master learning rate of dropout.
    keep_prob : float
        q_n ∈ (0, 1], dropout's keep probability.
    limits : str, sequence of str or dict
        Limit names (:data:`~meanfield_dropout.limits.LIMITS`), or {name: {constant:
        value}} to give one limit its own constants (e.g. a wrong limit).
    alpha, beta, tau : float or None
        Limit constants α = lim τ_n/q_n, β = lim (1 − q_n)/(n q_n), τ = lim τ_n shared by the
        limits (each uses only those it needs; see
        :func:`~meanfield_dropout.limits.limit_constants`).
    horizon : float
        T > 0 in time units t = k τ_n.
    seed : int or numpy.random.SeedSequence
        Root seed: initialisation, dropout masks, each limit's stream and the W2 subsets are
        spawned from it (a limit's stream does not depend on which other limits run; the
        same seed, or the same ``SeedSequence`` passed again, gives the same numbers).
    data : Dataset or (inputs, targets), optional
        Default :func:`default_data`. Networks have no bias (φ(x, z) = a σ(w·z)).
    activation : str
        σ; smooth (``tanh``) by default, as the limit theorems assume.
    n_times : int
        Number of grid times in [0, T] (≥ 2).
    limit_particles : int, optional
        N, the particle count of the limits (default n).
    **options
        ``coupled`` (sequence from :data:`COUPLED_VARIANTS`, default (); ``jump-bernoulli``
        needs that limit in ``limits``, read at its steps k = round(t/τ)), ``w2_particles``
        (default 500), ``dt`` (Heun step of the flows, default
        :data:`~meanfield_dropout.limits.DEFAULT_DT`), ``chunk_steps`` (engine, default 256),
        ``progress`` (default False).

    Returns
    -------
    dict
        ``times`` (T,), ``width``, ``master_lr``, ``keep_prob``, ``limit_particles``,
        ``dropout_steps`` (T,), ``dropout_loss`` (T,) and, for each limit name, a dict with
        ``predictor`` (T,), ``w2`` (T,), ``steps`` (T,) the dropout steps compared, ``times``
        (T,) the limit times of those steps (k τ_n; k τ for ``jump-bernoulli``),
        ``limit_loss`` (T,) and the constants; with ``coupled``, ``coupled_rms`` =
        {variant: (T,)}. Values are numbers, strings and arrays
        (see :func:`flatten` for one-level npz keys).
    """
    width = check_int(width, "width", low=1)
    master_lr = check_positive(master_lr, "master_lr")
    keep_prob = check_keep_prob(keep_prob)
    horizon = check_positive(horizon, "horizon")
    n_times = check_int(n_times, "n_times", low=2)
    requests = _limit_requests(limits, alpha, beta, tau)
    coupled = tuple(options.pop("coupled", ()))
    for name in coupled:
        check_choice(name, "coupled variant", COUPLED_VARIANTS)
    if "jump-bernoulli" in coupled and "jump-bernoulli" not in requests:
        raise ValueError("coupled variant 'jump-bernoulli' needs the jump-bernoulli limit "
                         "(its constants) in limits")
    engine_coupled = tuple(name for name in coupled if name != "jump-bernoulli")
    w2_particles = check_int(options.pop("w2_particles", 500), "w2_particles", low=1)
    dt = options.pop("dt", DEFAULT_DT)
    chunk_steps = options.pop("chunk_steps", 256)
    progress = bool(options.pop("progress", False))
    if options:
        raise ValueError(f"unknown options {sorted(options)}; allowed: coupled, w2_particles, "
                         "dt, chunk_steps, progress")
    n_limit = width if limit_particles is None else check_int(limit_particles,
                                                              "limit_particles", low=1)
    inputs, targets = _data_arrays(data)
    inputs = check_array(inputs, "data inputs", 2)
    targets = check_array(targets, "data targets", 1, shape=(inputs.shape[0],))
    dim = inputs.shape[1]
    act = activation_code(activation)

    init_seq, extra_seq, dropout_seq, w2_seq, *limit_seqs = seed_sequence(seed).spawn(
        4 + len(LIMITS))
    X0 = init_particles(width, dim, seed=init_seq)
    if n_limit <= width:
        X0_limit = X0[:n_limit]
    else:
        X0_limit = np.vstack([X0, init_particles(n_limit - width, dim, seed=extra_seq)])

    times = np.linspace(0.0, horizon, n_times)
    step_length = {name: c["tau"] if name == "jump-bernoulli" else master_lr
                   for name, c in requests.items()}
    steps_for = {name: np.rint(times / step_length[name]).astype(np.int64)
                 for name in requests}
    cont_steps = np.rint(times / master_lr).astype(np.int64)
    all_steps = np.unique(np.concatenate([cont_steps, *steps_for.values()]))
    total = int(all_steps[-1])
    mask_seed = int(dropout_seq.generate_state(1)[0])
    run = simulate(inputs, targets, master_lr=master_lr, steps=total, keep_prob=keep_prob,
                   initial=X0, variants=("dropout",) + engine_coupled, seed=mask_seed,
                   activation=activation,
                   snapshot_steps=all_steps, loss_every=max(total, 1),
                   chunk_steps=chunk_steps, progress=progress)
    Zt = np.ascontiguousarray(inputs.T)

    def cloud(variant, step):
        return run.snapshots[variant][np.searchsorted(run.snapshot_steps, step)]

    def predictor(X):
        return _cloud_predictor(X, Zt, False, act)

    def loss(f):
        return 0.5 * float(np.mean((f - targets) ** 2))

    k = min(width, n_limit, w2_particles)
    w2_rng = np.random.default_rng(w2_seq)
    drop_idx = np.sort(w2_rng.choice(width, k, replace=False))
    limit_idx = drop_idx if n_limit == width else np.sort(w2_rng.choice(n_limit, k,
                                                                        replace=False))
    out = dict(times=times, width=width, master_lr=master_lr, keep_prob=keep_prob,
               limit_particles=n_limit, horizon=horizon, activation=activation,
               dropout_steps=cont_steps,
               dropout_loss=np.array([loss(predictor(cloud("dropout", s))) for s in cont_steps]))
    for name, constants in requests.items():
        steps = steps_for[name]
        # the limit at the exact time of the dropout step it is compared with
        result = simulate_limit(name, inputs, targets, times=steps * step_length[name],
                                initial=X0_limit, seed=limit_seqs[LIMITS.index(name)],
                                activation=activation, dt=dt, progress=progress, **constants)
        entry = dict(constants, times=result.times, steps=steps,
                     predictor=np.empty(n_times), w2=np.empty(n_times),
                     limit_loss=np.array([loss(f) for f in result.predictor]))
        for t, step in enumerate(steps):
            X = cloud("dropout", step)
            entry["predictor"][t] = predictor_distance(predictor(X), result.predictor[t])
            entry["w2"][t] = wasserstein2(X[drop_idx], result.snapshots[t][limit_idx])
        out[name] = entry
    if coupled:
        out["coupled_rms"] = {v: np.array([coupled_rms(cloud("dropout", s), cloud(v, s))
                                           for s in cont_steps]) for v in engine_coupled}
    if "jump-bernoulli" in coupled:
        c, steps = requests["jump-bernoulli"], steps_for["jump-bernoulli"]
        # same seed, hence the same uniforms U: the masks are U < q instead of U < q_n
        jump = simulate(inputs, targets, master_lr=c["tau"], steps=int(steps[-1]),
                        keep_prob=c["tau"] / c["alpha"], initial=X0, variants=("ram",),
                        seed=mask_seed, activation=activation, snapshot_steps=steps,
                        loss_every=max(int(steps[-1]), 1), chunk_steps=chunk_steps,
                        progress=progress)
        out["coupled_rms"]["jump-bernoulli"] = np.array([
            coupled_rms(cloud("dropout", s),
                        jump.snapshots["ram"][np.searchsorted(jump.snapshot_steps, s)])
            for s in steps])
    return out


def flatten(result, prefix=""):
    """One-level ``{"a/b": value}`` view of a nested result dict (for ``numpy.savez``)."""
    flat = {}
    for key, value in result.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = np.asarray(value)
    return flat


# ---------------------------------------------------------------------------------------------
# Studies over widths
# ---------------------------------------------------------------------------------------------

def _summary(series):
    """Distance summary of one run: sup over the grid times t > 0."""
    return float(np.max(series[1:]))


def convergence_study(tau, keep, widths, *, limits, repeats=3, horizon=2.0, seed=0,
                      alpha=None, beta=None, limit_tau=None, data=None, activation="tanh",
                      n_times=5, limit_particles_factor=1, label="", progress=True,
                      **options):
    """Distances from dropout to each limit as functions of the width, with log–log slopes.

    Parameters
    ----------
    tau, keep : callable
        n ↦ τ_n and n ↦ q_n (e.g. ``Scaling.tau`` and ``Scaling.keep`` from
        :mod:`phase_diagram.scalings`).
    widths : sequence of int
        At least two distinct widths.
    limits : str, sequence of str or dict
        As in :func:`measure_distances`.
    repeats : int
        Independent seeds per width (≥ 1; the slope interval needs ≥ 2).
    horizon : float
        T, in time units t = k τ_n.
    seed : int
        Root seed; repeat r at width n uses ``SeedSequence(seed, spawn_key=(r, n))``.
    alpha, beta, limit_tau : float, optional
        The limit constants (α, β, τ = lim τ_n).
    data, activation, n_times
        As in :func:`measure_distances`.
    limit_particles_factor : int
        N = factor × n particles for the limits.
    label : str
        Title of the study (plots).
    progress : bool
        ``tqdm`` bar over the cells.
    **options
        Passed to :func:`measure_distances` (``coupled``, ``w2_particles``, ``dt``, ...).

    Returns
    -------
    dict
        ``widths`` (W,), ``times`` (T,), ``label``, ``tau`` and ``keep`` per width, and
        ``distances``: {series: {metric: (R, W, T) array}} with series the limit names (metrics
        ``predictor``, ``w2``) and ``coupled_rms/<variant>`` (metric ``coupled_rms``);
        ``fits``: {series: {metric: :func:`fit_slopes` of the sup over t > 0}}.
    """
    if not (callable(tau) and callable(keep)):
        raise ValueError("tau and keep must be callables n -> value")
    widths = sorted({check_int(n, "widths entry", low=1) for n in widths})
    if len(widths) < 2:
        raise ValueError("widths must hold at least two distinct widths")
    repeats = check_int(repeats, "repeats", low=1)
    seed = check_int(seed, "seed", low=0)
    factor = check_int(limit_particles_factor, "limit_particles_factor", low=1)
    requests = _limit_requests(limits, alpha, beta, limit_tau)
    per_width = [(n, check_positive(tau(n), f"tau(n={n})"),
                  check_keep_prob(keep(n), f"keep(n={n})")) for n in widths]
    series = {}
    times = None
    bar = tqdm(total=repeats * len(widths), disable=not progress, desc=label or "converge",
               unit="cell")
    for w, (n, tau_n, keep_n) in enumerate(per_width):
        for r in range(repeats):
            cell = measure_distances(
                n, tau_n, keep_n, requests,
                alpha=None, beta=None, tau=None, horizon=horizon,
                seed=np.random.SeedSequence(seed, spawn_key=(r, n)), data=data,
                activation=activation, n_times=n_times, limit_particles=factor * n, **options)
            times = cell["times"]
            rows = {name: {m: cell[name][m] for m in METRICS} for name in requests}
            for variant, values in cell.get("coupled_rms", {}).items():
                rows[f"coupled_rms/{variant}"] = {"coupled_rms": values}
            for key, metrics in rows.items():
                for metric, values in metrics.items():
                    series.setdefault(key, {}).setdefault(
                        metric, np.empty((repeats, len(widths), n_times)))[r, w] = values
            bar.update()
    bar.close()
    fits = {key: {metric: fit_slopes(widths, np.max(arr[:, :, 1:], axis=2))
                  for metric, arr in metrics.items()} for key, metrics in series.items()}
    return dict(label=label, widths=np.array(widths), times=times,
                tau=np.array([p[1] for p in per_width]), keep=np.array([p[2] for p in per_width]),
                limits=requests, distances=series, fits=fits)


def plot_convergence(studies, path, *, metric="predictor"):
    """Log–log panels (one per study) of the distance from dropout to each limit vs n.

    Each curve is the mean over repeats of sup_{0<t≤T} distance, with a band of ± one
    standard deviation over repeats; the legend gives the fitted slope and its 95% interval.
    With ``metric="predictor"`` the coupled RMS series (parameter units) are drawn dashed on
    the same axes.

    Parameters
    ----------
    studies : dict or sequence of dict
        Results of :func:`convergence_study`.
    path : str or path-like
        PNG file to write.
    metric : {"predictor", "w2"}
        Distance to the limits.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    check_choice(metric, "metric", METRICS)
    if isinstance(studies, dict):
        studies = [studies]
    cols = min(3, len(studies))
    rows = math.ceil(len(studies) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 4.2 * rows), squeeze=False)
    for ax in axes.flat[len(studies):]:
        ax.set_visible(False)
    for ax, study in zip(axes.flat, studies):
        widths = study["widths"]
        for key, metrics in study["distances"].items():
            name = "coupled_rms" if key.startswith("coupled_rms/") else metric
            if name == "coupled_rms" and metric != "predictor":
                continue
            summary = np.max(metrics[name][:, :, 1:], axis=2)
            fit = study["fits"][key][name]
            mean, sd = summary.mean(axis=0), summary.std(axis=0)
            lo, hi = fit["slope_ci"]
            shown = f"coupled RMS to {key.split('/')[1]}" if name == "coupled_rms" else key
            text = (f"{shown}: slope {fit['slope']:.2f}"
                    + ("" if math.isnan(lo) else f" [{lo:.2f}, {hi:.2f}]"))
            style = "--" if name == "coupled_rms" else "-"
            line, = ax.loglog(widths, mean, style, marker="o", label=text)
            ax.fill_between(widths, np.maximum(mean - sd, mean * 0.05), mean + sd,
                            color=line.get_color(), alpha=0.2)
        ax.set_title(study["label"] or "dropout vs limits", fontsize=9)
        ax.set_xlabel("width n")
        ax.set_ylabel({"predictor": "sup_t predictor RMS error (target units)\n"
                                    "dashed: coupled RMS (parameter units)",
                       "w2": "sup_t W2 between clouds (parameter units)"}[metric], fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def scaling_limit(tau_expr, keep_expr):
    """Parse a scaling and classify it with :mod:`phase_diagram`.

    Parameters
    ----------
    tau_expr, keep_expr : str
        τ_n and q_n as expressions in ``n`` (``phase_diagram.scalings.parse_scaling``).

    Returns
    -------
    scaling : phase_diagram.scalings.Scaling
    phase : str
        The phase, one of :data:`~meanfield_dropout.limits.LIMITS`, ``degenerate`` or
        ``undetermined``.
    constants : dict or None
        ``alpha``, ``beta``, ``tau`` of the predicted limit (None without one).
    """
    from phase_diagram.regimes import classify
    from phase_diagram.scalings import parse_scaling

    scaling = parse_scaling(tau_expr, keep_expr)
    regime = classify(scaling)
    if regime.phase not in LIMITS:
        return scaling, regime.phase, None
    config = regime.limit_config()
    return scaling, regime.phase, {k: config[k] for k in ("alpha", "beta", "tau")}


def phase_study(phase, widths, *, repeats=3, seed=0, progress=True, **options):
    """:func:`convergence_study` of the scaling :data:`PHASE_STUDIES` lists for ``phase``.

    Dropout is compared with the predicted limit (constants from the scaling) and with the
    wrong limits of the table.

    Parameters
    ----------
    phase : str
        One of :data:`~meanfield_dropout.limits.LIMITS`.
    widths : sequence of int
    repeats, seed, progress
        As in :func:`convergence_study`.
    **options
        Passed to :func:`convergence_study`.
    """
    check_choice(phase, "phase", PHASE_STUDIES)
    spec = PHASE_STUDIES[phase]
    scaling, found, constants = scaling_limit(spec["tau"], spec["keep"])
    if found != phase:
        raise ValueError(f"PHASE_STUDIES[{phase!r}] classifies as {found!r}")
    limits = {phase: dict(constants)}
    for name, overrides in spec["wrong"].items():
        limits[name] = dict(constants, **overrides)
    options.setdefault("coupled", spec.get("coupled", ()))
    options.setdefault("horizon", spec["horizon"])
    return convergence_study(scaling.tau, scaling.keep, widths, limits=limits,
                             repeats=repeats, seed=seed, progress=progress,
                             label=f"{phase}: τ={spec['tau']}, q={spec['keep']}", **options)
