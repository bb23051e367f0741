"""Finite-width particle engine: (S)GD on a two-layer network under dropout and its variants.

Neuron i moves by the master learning rate τ times Dφ(x_i)ᵀ(…) (GD on the loss with step n·τ
in the mean-field scaling, the authors' ``eta = tau * width``). With masks M_i, M'_i ∈ {0, 1/q}
i.i.d. (keep probability q) the update rules are (Chizat, Marion & Yesbay 2025, §2)

=============  ==========================================================================
``gd``         −τ Dφ(x_i)ᵀ (f − y)
``dropout``    −τ M_i Dφ(x_i)ᵀ (s Σ_j M_j φ(x_j) − y)   (one mask forward and backward)
``ram``        −τ M_i Dφ(x_i)ᵀ (f − y)                  (random metric: gradient thinning)
``pn``         −τ Dφ(x_i)ᵀ (s Σ_j M'_j φ(x_j) − y)      (propagation noise)
``pn_ram``     −τ M_i Dφ(x_i)ᵀ (s Σ_j M'_j φ(x_j) − y)  (M' independent of M)
``penalized``  −τ Dφ(x_i)ᵀ (f − y + λ φ(x_i)),  λ = s(1 − q)/q by default
=============  ==========================================================================

where f = s Σ_j φ(x_j) is the unmasked predictor and s the output scale (1/n or 1). For the
square loss f − y is replaced by the loss derivative in general (logistic and softmax
cross-entropy losses included). Every rule is one masked-row step of
:mod:`meanfield_dropout.kernels.core`.

Coupling: all variants of one :func:`simulate` call share the initialisation, the minibatches
and two mask streams. M (the "dropout mask") is dropout's forward-and-backward mask and the
backward mask of ``ram`` and ``pn_ram``; M' (an independent stream) is the forward mask of
``pn`` and ``pn_ram``. This is the coupling of the paper's experiments, under which dropout
and RaM paths converge pathwise. The randomness is planned outside the kernels: a seed is
spawned into streams (:class:`SeededNoise`), or the masks and batches are handed in
(:class:`ExplicitNoise`).

:func:`simulate` is the keyword front; :mod:`meanfield_dropout.engine_plan` groups and checks
its settings into a plan, and :func:`run_simulation` runs a plan.
"""
import dataclasses
import math

import numpy as np
from tqdm.auto import tqdm

from .runtime import results, tables
from .kernels.blocks import make_workspace
from .runtime.memory import announce_cost
from .runtime.threads import PARALLEL_SECONDS, kernel_threads
from .kernels.relu_signs import _sign_path
from .kernels.twins import for_run, sign_path_only
from .kernels.variants import VARIANTS, Chunk, Losses, _run_chunk
from .runtime.compiling import compile_ahead
from .network import network_data
from .engine_plan import (DIVERGENCE_FACTOR, Dynamics, Recording, plan_simulation,
                          simulation_seconds, validation_data)


class DivergenceError(FloatingPointError):
    """A run left the sane range (non-finite, or beyond its divergence bounds); ``step`` says where.

    Attributes
    ----------
    step : int
        The run was out of range after this many steps (rings, Heun steps, …: see ``unit``).
    variant : str
        The update rule, limit or method that diverged.
    time : float or None
        The time of the dynamics at that step, where it has one (the limits).
    """

    def __init__(self, step, variant, detail="", *, kind="variant", unit="step",
                 hint="try a smaller master_lr", time=None):
        self.step = step
        self.variant = variant
        self.time = time
        at = f"{unit} {step}" + ("" if time is None else f" (t = {time:.4g})")
        super().__init__(f"{kind} {variant!r} diverged at {at}"
                         + (f" ({detail})" if detail else "")
                         + (f"; {hint}" if hint else ""))

    def __reduce__(self):
        # keep the message, step and variant across processes (the default would call
        # __init__ with the message alone)
        return _rebuild_error, (type(self), self.args, dict(self.__dict__))


def _rebuild_error(cls, args, state):
    """Unpickle a :class:`DivergenceError` (or subclass) without calling its ``__init__``."""
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


@results.result_class
class SimulationResult(results.Result):
    """Losses, snapshots and final particles of the variants of one coupled run.

    Attributes
    ----------
    settings : dict
        Every argument that defines the run (JSON-serialisable).
    loss_steps : ndarray of int
        Steps k at which losses were recorded (parameters after k steps).
    train_loss, val_loss : dict of str -> ndarray
        Unmasked train/validation loss at ``loss_steps`` per variant (``val_loss`` empty
        without validation data).
    snapshot_steps : ndarray of int
    snapshot_neurons : ndarray of int
        Indices of the neurons kept in snapshots.
    snapshots : dict of str -> ndarray, shape (len(snapshot_steps), len(snapshot_neurons), p)
    final : dict of str -> ndarray, shape (n, p)
        Particles after the last step.
    variants : tuple of str
        ``settings["variants"]``.
    """

    settings: dict
    loss_steps: np.ndarray
    train_loss: dict
    val_loss: dict
    snapshot_steps: np.ndarray
    snapshot_neurons: np.ndarray
    snapshots: dict
    final: dict
    variants: tuple = dataclasses.field(init=False)

    def __post_init__(self):
        self.variants = tuple(self.settings["variants"])

    def to_frame(self):
        """The losses as a tidy table (pandas, the ``table`` extra): one row per variant and
        recorded step.

        Columns ``variant``, ``step`` k, ``time`` k τ, ``train_loss``, ``val_loss`` (NaN
        without validation data) and the run's ``width``, ``master_lr``, ``keep_prob``,
        ``seed`` and ``data`` (set by the command line; None otherwise).
        """
        s = self.settings
        run = dict(width=s["width"], master_lr=s["master_lr"], keep_prob=s["keep_prob"],
                   seed=str(s["seed"]), data=s.get("data"))
        return tables.frame(
            dict(variant=name, step=int(step), time=float(step) * s["master_lr"],
                 train_loss=float(self.train_loss[name][i]),
                 val_loss=float(self.val_loss[name][i]) if name in self.val_loss else math.nan,
                 **run)
            for name in self.variants for i, step in enumerate(self.loss_steps))


def _chunk_bounds(steps, chunk_steps, snapshot_steps):
    """The chunks (start, stop) of a run of ``steps`` steps, in order, made as the run reaches
    them: their edges are the multiples of ``chunk_steps`` and the snapshot steps (a run
    that diverges early never lists the chunks of its whole horizon). A run of no steps has
    one chunk of none, which records the losses at the start."""
    if steps == 0:
        yield 0, 0
    snapshots = iter(np.unique(snapshot_steps))
    start, snapshot = 0, 0
    while start < steps:
        while snapshot <= start:
            snapshot = int(next(snapshots, steps))
        stop = min((start // chunk_steps + 1) * chunk_steps, snapshot, steps)
        yield start, stop
        start = stop


def simulate(inputs, targets, *, master_lr, steps, keep_prob=1.0, width=None, initial=None,
             variants=("dropout",), seed=0, activation="relu", bias=False,
             output_scale="mean_field", loss="square", batch_size=None, penalty=None,
             val_inputs=None, val_targets=None, snapshot_steps=(), snapshot_neurons=None,
             loss_every=1, dtype="float64", chunk_steps=32, noise=None,
             divergence_factor=DIVERGENCE_FACTOR, progress=True):
    """Train a two-layer network with several coupled update rules from one seed.

    Parameters
    ----------
    inputs : ndarray, shape (m, d)
        Training inputs z_j.
    targets : ndarray, shape (m,) or (m, K)
        Targets y_j: reals for the square loss, labels ±1 for the logistic loss, one-hot
        rows for the softmax cross-entropy. K columns give a network with K outputs.
    master_lr : float
        Master learning rate τ > 0: neuron i moves by τ·Dφ(x_i)ᵀ(…). With the ``standard``
        output scale this is the ordinary learning rate.
    steps : int
        Number of steps K ≥ 0.
    keep_prob : float
        Keep probability q ∈ (0, 1]; masks take values 0 and 1/q.
    width : int, optional
        Number of neurons n ≥ 1; particles drawn by :func:`~meanfield_dropout.network.init_particles` from ``seed``.
    initial : ndarray, shape (n, p), optional
        Initial particles instead of ``width`` (then ``seed`` drives only masks and batches).
    variants : sequence of str
        Update rules from :data:`VARIANTS`, run coupled.
    seed : int or numpy.random.SeedSequence
        Root seed; init, minibatch and the two mask streams are spawned from it (the same
        seed, or the same ``SeedSequence`` passed again, gives the same streams).
    activation : str
        σ: ``relu``, ``tanh``, ``softplus`` or ``sigmoid``.
    bias : bool
        Whether neurons carry a bias b_i.
    output_scale : {"mean_field", "standard"}
        s = 1/n or s = 1 in f = s Σ_i φ(x_i).
    loss : {"square", "logistic", "softmax"}
        ½ mean |f − y|², mean log(1 + exp(−y f)) or the softmax cross-entropy.
    batch_size : int, optional
        Minibatch size B ∈ [1, m], drawn without replacement each step; full batch if None.
    penalty : float, optional
        λ of ``penalized``; default s(1 − q)/q, i.e. (1 − q)/(nq) in the mean-field scaling.
    val_inputs, val_targets : ndarray, optional
        Validation data; its loss is recorded with the train loss.
    snapshot_steps : sequence of int
        Steps (0..K) after which particles are stored.
    snapshot_neurons : int or sequence of int, optional
        Neurons kept in snapshots: the first k if an int, these indices if a sequence, all if
        None.
    loss_every : int
        Record losses every this many steps (and after the last step).
    dtype : {"float64", "float32"}
    chunk_steps : int
        Steps per call of the jitted kernel between progress-bar updates.
    noise : ExplicitNoise, optional
        Masks and minibatches to use instead of drawing them from ``seed``.
    divergence_factor : float
        A run diverges when a parameter leaves ``divergence_factor`` × max(1, max|x_i(0)|)
        or an output (masked forward pass) leaves ``divergence_factor`` × max(1, max|y_j|),
        or anything stops being finite (default :data:`DIVERGENCE_FACTOR`).
    progress : bool
        Show a ``tqdm`` progress bar, after the estimated duration on stderr when it exceeds
        :data:`~meanfield_dropout.runtime.memory.ANNOUNCE_SECONDS`
        (:func:`~meanfield_dropout.engine_plan.simulation_seconds`).

    Returns
    -------
    SimulationResult

    Raises
    ------
    ValueError
        For an argument outside its allowed range (the message names it).
    DivergenceError
        When a run leaves its divergence bounds; the message gives the step.
    MemoryLimitError
        When snapshots and states would not fit in memory (:mod:`meanfield_dropout.runtime.memory`).

    Notes
    -----
    A keyword front over the grouped settings: :func:`~meanfield_dropout.network.network_data`
    (data and architecture), :class:`~meanfield_dropout.engine_plan.Dynamics`,
    :class:`~meanfield_dropout.engine_plan.Recording`, checked once by
    :func:`~meanfield_dropout.engine_plan.plan_simulation` and run by :func:`run_simulation`.
    """
    train = network_data(inputs, targets, loss=loss, activation=activation, bias=bias,
                         dtype=dtype)
    validation = validation_data(val_inputs, val_targets, train, loss=loss,
                                 activation=activation)
    dynamics = Dynamics(master_lr, steps, keep_prob, variants, output_scale, penalty,
                        batch_size, seed, divergence_factor)
    recording = Recording(loss_every, snapshot_steps, snapshot_neurons, chunk_steps)
    plan = plan_simulation(train, dynamics, recording, width=width, initial=initial,
                           validation=validation, noise=noise)
    return run_simulation(plan, progress)


def run_simulation(plan, progress=True):
    """Run a checked :class:`~meanfield_dropout.engine_plan.SimulationPlan` (see
    :func:`simulate`).

    Parameters
    ----------
    plan : SimulationPlan
        From :func:`~meanfield_dropout.engine_plan.plan_simulation`.
    progress : bool
        The estimate (if long) and the bar, as in :func:`simulate`.

    Returns
    -------
    SimulationResult
    """
    schedule = plan.schedule
    seconds = simulation_seconds(plan)
    if progress:
        announce_cost(seconds, f"simulate n={plan.initial.shape[0]}, {schedule.steps} steps of "
                               f"{len(plan.rules)} rule(s)")
    with kernel_threads(plan.cells):
        states, train, val, snaps = _drive(plan.initial, plan.rules, plan.data, plan.noise,
                                           schedule, progress, seconds >= PARALLEL_SECONDS)
    return SimulationResult(plan.settings, schedule.loss_steps, train, val,
                            schedule.snapshot_steps, schedule.snapshot_neurons, snaps, states)


def _drive(initial, rules, data, noise, schedule, progress, parallel):
    """The one driver loop: chunk by chunk, every rule on the same noise chunk, on the
    parallel kernels if ``parallel`` (else their serial twins, :func:`for_run`), and on the
    sign path's copies if every rule takes the sign path
    (:func:`~meanfield_dropout.kernels.twins.sign_path_only`). The last chunk also records the
    losses after the last step.

    Returns the final particles, train and validation losses and snapshots per rule.
    """
    variants = tuple(rules)
    steps = schedule.steps
    states = {name: initial.copy() for name in variants}
    record_index = {int(s): i for i, s in enumerate(schedule.loss_steps)}
    train = {name: np.full(schedule.loss_steps.size, np.nan) for name in variants}
    val = {name: np.full(schedule.loss_steps.size, np.nan) for name in variants} \
        if data.validation.targets.shape[1] else {}
    snaps = {name: np.empty((schedule.snapshot_steps.size, schedule.snapshot_neurons.size,
                             initial.shape[1]), dtype=initial.dtype) for name in variants}
    chunks = _chunk_bounds(steps, schedule.chunk_steps, schedule.snapshot_steps)
    (points, dim), outputs = data.train.inputs.shape, data.train.outputs
    work = make_workspace(initial.shape[0], outputs, dim,
                          max(points, data.validation.targets.shape[1]), initial.dtype)
    train_data = data.train
    signs_only = all(_sign_path.py_func(train_data.activation, train_data.outputs, rule.penalty)
                     for rule in rules.values())
    run_chunk = for_run(sign_path_only(_run_chunk) if signs_only else _run_chunk, parallel)
    with tqdm(total=steps * len(variants), disable=not progress, unit="step",
              desc=f"simulate n={initial.shape[0]}") as bar:
        compiled = False
        for start, stop in chunks:
            _store_snapshots(states, snaps, schedule, start)
            masks, forward_masks, batches = noise.chunk(start, stop)
            record = np.array([(start + k) in record_index
                               for k in range(stop - start + (stop == steps))])
            for name, rule in rules.items():
                train_chunk = np.full(record.size, np.nan)
                val_chunk = np.full(record.size, np.nan)
                args = (states[name], rule, data, Chunk(masks, forward_masks, batches, record),
                        Losses(train_chunk, val_chunk), start, work)
                if not compiled:
                    # compiling (said so if it is needed) before the bar's clock starts
                    compile_ahead(run_chunk, args, "simulate", initial.dtype.name, progress)
                    bar.reset()
                    compiled = True
                bad = run_chunk(*args)
                if bad < 0 and not np.all(np.isfinite(states[name])):
                    bad = stop - 1
                if bad >= 0:
                    raise DivergenceError(bad, name)
                for k in np.flatnonzero(record):
                    train[name][record_index[start + k]] = train_chunk[k]
                    if val:
                        val[name][record_index[start + k]] = val_chunk[k]
                bar.update(stop - start)
    _store_snapshots(states, snaps, schedule, steps)
    return states, train, val, snaps


def _store_snapshots(states, snaps, schedule, step):
    """Copy the chosen neurons of every variant if ``step`` is a snapshot step."""
    where = np.flatnonzero(schedule.snapshot_steps == step)
    for name, X in states.items():
        for i in where:
            snaps[name][i] = X[schedule.snapshot_neurons]
