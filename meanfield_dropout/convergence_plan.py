"""The validated plan of a convergence cell, its steps and cost, and the checks that keep a
:func:`~meanfield_dropout.convergence.measure_distances` cell from giving a silently wrong
distance.

* :class:`CellSettings` — what a cell measures and how, as given; :func:`make_plan` checks it
  once for the cells of a study;
* :func:`check_horizon` — a horizon shorter than half a step would run no step at all (and
  report a distance of 0 at every time): refused, naming the smallest valid horizon;
* :func:`cell_cost` — the memory (bytes) and the seconds of one core
  (:mod:`meanfield_dropout.cost_model`) of one cell, estimated before anything is allocated;
  :func:`check_cell` checks the memory against the share of the available memory a run may
  use (:func:`meanfield_dropout.runtime.memory.check_memory`) and the callers announce a long
  run with its estimate (:func:`meanfield_dropout.runtime.memory.announce_cost`);
* :func:`in_context` — a :class:`~meanfield_dropout.engine.DivergenceError` of one run of a
  cell, re-raised with the cell's width and hyperparameters.
"""
from typing import NamedTuple

import numpy as np

from .validation import check_choice, check_int, check_positive
from .kernels.activations import activation_code
from .data import data_label, load_dataset
from .cost_model import cell_seconds
from .engine import DivergenceError
from .engine_plan import DIVERGENCE_FACTOR
from .limits import DEFAULT_DT, LIMITS, LimitConstants, limit_constants
from .runtime.memory import check_memory
from .metrics import MAX_ASSIGNMENT_POINTS, W2_METHODS

#: Systems that can be coupled to the dropout run: finite-width variants and the Bernoulli
#: jump particle system (N = n).
COUPLED_VARIANTS = ("ram", "gd", "jump-bernoulli")
#: Distances reported per limit.
METRICS = ("predictor", "w2")
#: Limits whose clocks ``clock_coupling`` takes from dropout's keep draws.
CLOCK_COUPLED = ("jump-poisson", "critical")


#: The data of a study when none is given: the small ``toy`` problem of the registry
#: (:mod:`meanfield_dropout.data.registry`), not the paper's teacher–student problem.
DEFAULT_DATA = "toy"


class CellSettings(NamedTuple):
    """What a convergence cell measures and how, as given (checked by :func:`make_plan`; read
    by :func:`~meanfield_dropout.convergence.measure_distances`,
    :func:`~meanfield_dropout.convergence.estimate_cost` and
    :func:`~meanfield_dropout.convergence.convergence_study`).

    Attributes
    ----------
    limits : str, sequence of str or dict
        Limit names (:data:`~meanfield_dropout.limits.LIMITS`), or {name: {constant:
        value}} to give one limit its own constants (e.g. a wrong limit).
    horizon : float
        T > 0 in time units t = k τ_n.
    constants : LimitConstants
        α = lim τ_n/q_n, β = lim (1 − q_n)/(n q_n), τ = lim τ_n shared by the limits (each
        uses only those it needs; see :data:`~meanfield_dropout.limits.LIMIT_CONSTANTS`).
    n_times : int
        Number of grid times in [0, T] (≥ 2).
    data : str, path, Dataset or (inputs, targets), optional
        A name of :data:`~meanfield_dropout.data.DATASETS`, an ``.npz`` file, a Dataset or a
        pair (:func:`~meanfield_dropout.data.load_dataset`); None: :data:`DEFAULT_DATA`
        (``"toy"``). Networks have no bias (φ(x, z) = a σ(w·z)).
    activation : str
        σ; smooth (``tanh``) by default, as the limit theorems assume.
    coupled : sequence of str
        Systems from :data:`COUPLED_VARIANTS` run coupled to dropout (``coupled_rms``);
        ``jump-bernoulli`` needs that limit in ``limits`` and is read at its steps
        k = round(t/τ).
    w2_particles : int
        Size of the W2 subsets; at most
        :data:`~meanfield_dropout.metrics.MAX_ASSIGNMENT_POINTS` for the exact assignment.
    w2_method : {"assignment", "network-simplex", "sliced"}
        The solver of :func:`~meanfield_dropout.metrics.wasserstein2`.
    dt : float
        Heun step of the flows.
    chunk_steps : int
        Engine steps per kernel call between progress-bar updates.
    divergence_factor : float
        The bounds of every run of the cell
        (:data:`~meanfield_dropout.engine.DIVERGENCE_FACTOR`).
    progress : bool
        ``tqdm`` bars of the runs of a cell.
    tile_limit : bool
        With N a multiple of n, the limits start from copies of dropout's particles (the same
        empirical measure, so the t = 0 distances are 0).
    clock_coupling : bool
        The ``jump-poisson`` and ``critical`` limits take their rings from dropout's keep
        draws (:class:`~meanfield_dropout.limits.DropoutClock`); needs N = n.
    """

    limits: object
    horizon: float
    constants: LimitConstants = LimitConstants()
    n_times: int = 5
    data: object = None
    activation: str = "tanh"
    coupled: tuple = ()
    w2_particles: int = 500
    w2_method: str = "assignment"
    dt: float = DEFAULT_DT
    chunk_steps: int = 256
    divergence_factor: float = DIVERGENCE_FACTOR
    progress: bool = False
    tile_limit: bool = False
    clock_coupling: bool = False


def cell_settings(limits, constants, horizon, options):
    """:class:`CellSettings` of ``limits``, ``constants``, ``horizon`` and the keyword
    ``options`` of its other fields (the form of the scans' cell functions and of the keyword
    fronts of :mod:`phase_diagram.convergence`); a ``ValueError`` names an unknown option."""
    allowed = CellSettings._fields[3:]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown options {unknown}; allowed: {', '.join(allowed)}")
    return CellSettings(limits, horizon, constants, **options)


class Plan(NamedTuple):
    """:class:`CellSettings` checked by :func:`make_plan`: ``limits`` as {name: constants},
    the data loaded (``inputs``, ``targets``) and named (``data``)."""

    limits: dict
    horizon: float
    n_times: int
    data: str
    inputs: np.ndarray
    targets: np.ndarray
    activation: str
    coupled: tuple
    w2_particles: int
    w2_method: str
    dt: float
    chunk_steps: int
    divergence_factor: float
    progress: bool
    tile_limit: bool
    clock_coupling: bool


def limit_requests(limits, alpha, beta, tau):
    """{name: validated constants} from a name, a list of names or {name: overrides}."""
    if isinstance(limits, str):
        limits = [limits]
    items = limits.items() if isinstance(limits, dict) else [(name, {}) for name in limits]
    out = {}
    for name, overrides in items:
        check_choice(name, "limit", LIMITS)
        out[name] = limit_constants(name, **dict(dict(alpha=alpha, beta=beta, tau=tau),
                                                 **(overrides or {})))
    if not out:
        raise ValueError("limits must name at least one limit")
    return out


def make_plan(settings):
    """The validated :class:`Plan` of :class:`CellSettings` (a ``ValueError`` naming the
    setting out of its range)."""
    if not isinstance(settings, CellSettings):
        raise ValueError(f"settings must be a CellSettings, got {type(settings).__name__}")
    if not isinstance(settings.constants, LimitConstants):
        raise ValueError(f"constants must be a LimitConstants, got "
                         f"{type(settings.constants).__name__}")
    requests = limit_requests(settings.limits, *settings.constants)
    coupled = tuple(settings.coupled)
    for name in coupled:
        check_choice(name, "coupled variant", COUPLED_VARIANTS)
    if "jump-bernoulli" in coupled and "jump-bernoulli" not in requests:
        raise ValueError("coupled variant 'jump-bernoulli' needs the jump-bernoulli limit "
                         "(its constants) in limits")
    activation_code(settings.activation)
    w2_particles = check_int(settings.w2_particles, "w2_particles", low=1)
    w2_method = check_choice(settings.w2_method, "w2_method", W2_METHODS)
    if w2_method == "assignment" and w2_particles > MAX_ASSIGNMENT_POINTS:
        raise ValueError(f"w2_particles must be <= {MAX_ASSIGNMENT_POINTS} for the exact "
                         f"assignment W2 (O(k^3) time), got {w2_particles}; use w2_method "
                         "'network-simplex' or 'sliced' (POT) for larger subsets")
    data = DEFAULT_DATA if settings.data is None else settings.data
    dataset = load_dataset(data)
    n_times = check_int(settings.n_times, "n_times", low=2)
    # the step grids of cell_steps: the times, each run's steps, their union and its sort
    check_memory(_FLOAT * n_times * (2 * len(requests) + 6), f"a grid of {n_times} times",
                 "use fewer n_times")
    return Plan(limits=requests, horizon=check_positive(settings.horizon, "horizon"),
                n_times=n_times, data=data_label(data),
                inputs=dataset.inputs, targets=dataset.targets,
                activation=settings.activation, coupled=coupled,
                w2_particles=w2_particles, w2_method=w2_method,
                dt=check_positive(settings.dt, "dt"),
                chunk_steps=check_int(settings.chunk_steps, "chunk_steps", low=1),
                divergence_factor=check_positive(settings.divergence_factor,
                                                 "divergence_factor"),
                progress=bool(settings.progress), tile_limit=bool(settings.tile_limit),
                clock_coupling=bool(settings.clock_coupling))


class Steps(NamedTuple):
    """The steps of one cell: the time of one step of each run, the steps each limit is
    compared at, dropout's own grid steps and every step the dropout run records."""

    lengths: dict
    limits: dict
    dropout: np.ndarray
    recorded: np.ndarray


def cell_steps(plan, master_lr):
    """The :class:`Steps` of a cell with dropout step τ_n = ``master_lr``."""
    times = np.linspace(0.0, plan.horizon, plan.n_times)
    lengths = {name: c["tau"] if name == "jump-bernoulli" else master_lr
               for name, c in plan.limits.items()}
    limits = {name: np.rint(times / lengths[name]).astype(np.int64) for name in plan.limits}
    dropout = np.rint(times / master_lr).astype(np.int64)
    return Steps(lengths, limits, dropout,
                  np.unique(np.concatenate([dropout, *limits.values()])))


def step_lengths(plan, master_lrs):
    """{run: its step length} of the runs of a study with τ_n = ``master_lrs[n]`` (for
    :func:`check_horizon`)."""
    runs = {f"dropout at width {n}": tau_n for n, tau_n in master_lrs.items()}
    if "jump-bernoulli" in plan.limits:
        runs["the Bernoulli jump limit"] = plan.limits["jump-bernoulli"]["tau"]
    return runs


def check_cell(plan, width, master_lr, keep_prob, limit_particles):
    """Refuse a cell that runs no step, would not fit in memory or couples the clocks of N ≠ n
    limit particles; return its estimated bytes and seconds (:func:`cell_cost`)."""
    if plan.clock_coupling and limit_particles != width:
        raise ValueError(f"clock_coupling needs limit_particles = width ({width}): one "
                         f"dropout keep draw per particle and step, got {limit_particles}")
    steps = cell_steps(plan, master_lr)
    check_horizon(plan.horizon, step_lengths(plan, {width: master_lr}))
    nbytes, seconds = cell_cost(plan, width, keep_prob, limit_particles, steps)
    check_memory(nbytes, f"a cell at width {width} ({int(steps.recorded[-1])} dropout steps, "
                         f"{limit_particles} limit particles)",
                 "use smaller widths, fewer n_times or a shorter horizon")
    return nbytes, seconds



_FLOAT = 8


def check_horizon(horizon, step_lengths):
    """Refuse a horizon that rounds to zero steps for one of the runs of a cell or study.

    Parameters
    ----------
    horizon : float
        T, the last grid time.
    step_lengths : dict
        {run: time length of one of its steps}, e.g. ``"dropout at width 20"`` → τ_n and
        ``"the Bernoulli jump limit"`` → its own step τ.

    Raises
    ------
    ValueError
        Naming the horizon, the run and the smallest valid horizon (one step of the longest
        step length): the last grid time T is run for round(T / step) steps.
    """
    for run, length in step_lengths.items():
        if np.rint(horizon / length) < 1:
            needed = max(step_lengths.values())
            raise ValueError(
                f"horizon {horizon:g} runs no step of {run} (its step is {length:.4g}, and "
                f"round(horizon/step) = 0 steps would run); the smallest valid horizon is "
                f"{needed:.4g} (one step)")


def cell_cost(plan, width, keep_prob, limit_particles, steps):
    """Estimated (bytes, seconds) of one cell.

    Parameters
    ----------
    plan : Plan
        The validated settings (data, limits, grid, options).
    width, keep_prob, limit_particles : int, float, int
        n, q_n and N.
    steps : Steps
        The cell's steps (:func:`cell_steps`).

    Returns
    -------
    nbytes : float
        Bytes the cell allocates at its peak.
    seconds : float
        Seconds of one core on the reference machine
        (:func:`meanfield_dropout.cost_model.cell_seconds`).
    """
    m, d = plan.inputs.shape
    p = 1 + d
    engine_variants = 1 + len([name for name in plan.coupled if name != "jump-bernoulli"])
    recorded = len(steps.recorded)
    nbytes = _FLOAT * (2 * width * p + engine_variants * (recorded + 1) * width * p
                       + 3 * width * m)
    peak_limit = 0.0
    for name, constants in plan.limits.items():
        limit_bytes = _FLOAT * (plan.n_times * (limit_particles * p + m) + 4 * limit_particles * m)
        if name == "jump-bernoulli":
            limit_bytes += _FLOAT * (len(steps.limits[name]) + 1) * limit_particles * p
        elif name not in ("wgf", "penalized-wgf"):
            # a batch of rings: who rings, its partner count and (critical) ~1/β partners
            rings = limit_particles * float(plan.horizon) / constants["alpha"]
            partners = 1.0 / constants["beta"] if constants["beta"] > 0 else 0.0
            limit_bytes += _FLOAT * min(rings, 1 << 20) * (2 + partners)
        peak_limit = max(peak_limit, limit_bytes)
    if "jump-bernoulli" in plan.coupled:
        nbytes += _FLOAT * (len(steps.limits["jump-bernoulli"]) + 1) * width * p
    k = min(width, limit_particles, plan.w2_particles)
    seconds = cell_seconds(
        width, keep_prob, int(steps.recorded[-1]), plan.limits, float(plan.horizon),
        limit_particles=limit_particles, n_times=plan.n_times, w2_particles=k,
        data_shape=plan.inputs.shape, dt=plan.dt, coupled=plan.coupled,
        clock_coupled=CLOCK_COUPLED if plan.clock_coupling else ())
    return nbytes + peak_limit + _FLOAT * 2 * k * k, seconds


def in_context(exc, context):
    """``exc`` (a :class:`DivergenceError` of one run of a cell), its message prefixed with the
    cell's ``context`` (width and hyperparameters); same ``step`` and ``variant``."""
    new = DivergenceError(exc.step, exc.variant)
    new.__dict__.update(exc.__dict__)
    new.args = (f"{context}: {exc}",)
    return new
