"""The settings of a :func:`~meanfield_dropout.engine.simulate` run, grouped and checked once.

:func:`~meanfield_dropout.engine.simulate` is a keyword front over four groups: the data and
architecture as the kernels read them (:class:`~meanfield_dropout.network.NetworkData`, built
by :func:`~meanfield_dropout.network.network_data`), the dynamics (:class:`Dynamics`), the
start (a width n or initial particles) and what is recorded (:class:`Recording`), plus explicit
noise if given. :func:`plan_simulation` checks them before anything is allocated or run and
returns a :class:`SimulationPlan`, all that :func:`~meanfield_dropout.engine.run_simulation`
reads.
"""
from typing import NamedTuple

import numpy as np

from .validation import (check_choice, check_int, check_keep_prob, check_nonnegative,
                         check_positive, seed_record)
from .kernels import variants as variants_module
from .kernels.relu_signs import _sign_path
from .kernels.variants import FORWARD_MASK, MASKS, VARIANTS, Data, Rule
from .network import (NetworkData, check_particles, data_names, init_particles, network_data,
                      output_scale_factor, particle_dim)
from .noise import ExplicitNoise, SeededNoise, engine_streams
from .runtime.memory import NOMINAL_RATE, check_memory

#: Default divergence factor: a run diverges when a parameter exceeds this many times the
#: initial scale max(1, max|x_i(0)|), or an output this many times max(1, max|y_j|).
DIVERGENCE_FACTOR = 1e6


def divergence_bounds(initial, targets, factor):
    """(output bound, parameter bound) of a run: ``factor`` × the initial scales (see above)."""
    parameter_scale = max(1.0, float(np.max(np.abs(initial))))
    output_scale = max(1.0, float(np.max(np.abs(targets)))) if targets.size else 1.0
    return factor * output_scale, factor * parameter_scale


class Dynamics(NamedTuple):
    """The update rules of a run and their constants, as given (checked by
    :func:`plan_simulation`; the meaning of each field is that of the :func:`simulate`
    argument of the same name).

    Attributes
    ----------
    master_lr : float
        τ > 0.
    steps : int
        K ≥ 0.
    keep_prob : float
        q ∈ (0, 1].
    variants : sequence of str
        Update rules from :data:`~meanfield_dropout.kernels.variants.VARIANTS`.
    output_scale : {"mean_field", "standard"}
        s = 1/n or s = 1.
    penalty : float or None
        λ of ``penalized`` (None: s(1 − q)/q).
    batch_size : int or None
        B ∈ [1, m] (None: full batch).
    seed : int or numpy.random.SeedSequence
        Root seed of the initialisation, minibatches and masks.
    divergence_factor : float
        The bounds of :func:`divergence_bounds`.
    """

    master_lr: float
    steps: int
    keep_prob: float
    variants: tuple
    output_scale: str
    penalty: object
    batch_size: object
    seed: object
    divergence_factor: float


class Recording(NamedTuple):
    """What a run records, as given (see :func:`simulate`).

    Attributes
    ----------
    loss_every : int
        Losses every this many steps (and after the last step).
    snapshot_steps : sequence of int
        Steps (0..K) after which particles are stored.
    snapshot_neurons : int, sequence of int or None
        Neurons kept in snapshots: the first k, these indices, or all.
    chunk_steps : int
        Steps per call of the jitted kernel between progress-bar updates.
    """

    loss_every: int
    snapshot_steps: tuple
    snapshot_neurons: object
    chunk_steps: int


class Schedule(NamedTuple):
    """When a run records losses and snapshots, and how its steps are chunked (checked)."""

    steps: int
    chunk_steps: int
    loss_steps: np.ndarray
    snapshot_steps: np.ndarray
    snapshot_neurons: np.ndarray


class SimulationPlan(NamedTuple):
    """A :func:`simulate` run, checked once by :func:`plan_simulation`: all the driver reads.

    Attributes
    ----------
    initial : ndarray, shape (n, p)
        Initial particles x_i(0).
    rules : dict
        variant → :class:`~meanfield_dropout.kernels.variants.Rule`, its constants.
    data : Data
        Training and validation data as the kernels read them.
    noise : SeededNoise or ExplicitNoise
        Masks and minibatches.
    schedule : Schedule
        Steps, loss records, snapshots and chunks.
    settings : dict
        The record of the run, stored with its result (``SimulationResult.settings``).
    cells : int
        n × B, the size of one step: the kernels' thread count follows it.
    """

    initial: np.ndarray
    rules: dict
    data: Data
    noise: object
    schedule: Schedule
    settings: dict
    cells: int


def validation_data(val_inputs, val_targets, train, *, loss, activation):
    """Validation data as :class:`~meanfield_dropout.network.NetworkData` like ``train`` (no
    points without it); both arrays or neither."""
    if (val_inputs is None) != (val_targets is None):
        raise ValueError("give both val_inputs and val_targets, or neither")
    dim, outputs = train.inputs.shape[1], train.outputs
    if val_inputs is None:
        val_inputs, val_targets = np.empty((0, dim)), np.empty((0, outputs))
    return network_data(val_inputs, val_targets, loss=loss, activation=activation,
                        bias=train.bias, dtype=train.inputs.dtype.name, dim=dim,
                        outputs=outputs, prefix="val_", empty_ok=True)


def plan_simulation(train, dynamics, recording, *, width=None, initial=None, validation=None,
                    noise=None):
    """Check a :func:`simulate` run once, before anything is allocated or run.

    Parameters
    ----------
    train : NetworkData
        Training data and architecture (:func:`~meanfield_dropout.network.network_data`).
    dynamics : Dynamics
    recording : Recording
    width : int, optional
        n, particles drawn from the seed; exactly one of ``width`` and ``initial``.
    initial : ndarray, shape (n, p), optional
        Initial particles x_i(0).
    validation : NetworkData, optional
        Validation data (:func:`validation_data`).
    noise : ExplicitNoise, optional
        Masks and minibatches instead of drawing them from the seed.

    Returns
    -------
    SimulationPlan

    Raises
    ------
    ValueError
        For a setting outside its allowed range (the message names it).
    MemoryLimitError
        When snapshots and states would not fit in memory.
    """
    for value, name, kind in ((train, "train", NetworkData), (dynamics, "dynamics", Dynamics),
                              (recording, "recording", Recording)):
        if not isinstance(value, kind):
            raise ValueError(f"{name} must be a {kind.__name__}, got {type(value).__name__}")
    if validation is not None and not isinstance(validation, NetworkData):
        raise ValueError(f"validation must be a NetworkData or None, got "
                         f"{type(validation).__name__}")
    (points, dim), outputs = train.inputs.shape, train.outputs
    master_lr = check_positive(dynamics.master_lr, "master_lr")
    keep_prob = check_keep_prob(dynamics.keep_prob)
    steps = check_int(dynamics.steps, "steps", low=0)
    variants = _check_variants(dynamics.variants)
    init_seq, batch_seq, mask_seq, forward_seq = engine_streams(dynamics.seed)
    width, initial = _check_start(width, initial, train)
    scale = output_scale_factor(dynamics.output_scale, width)
    penalty = scale * (1.0 - keep_prob) / keep_prob if dynamics.penalty is None \
        else dynamics.penalty
    penalty = check_nonnegative(penalty, "penalty")
    need_forward = any(MASKS[v][0] == FORWARD_MASK for v in variants)
    if noise is None:
        batch_size = points if dynamics.batch_size is None else \
            check_int(dynamics.batch_size, "batch_size", 1, points)
        noise = SeededNoise(mask_seq, forward_seq, batch_seq, width=width,
                            keep_prob=keep_prob, points=points, batch_size=batch_size,
                            need_forward=need_forward)
    elif isinstance(noise, ExplicitNoise):
        batch_size = noise.check(steps, width, points, need_forward)
    else:
        raise ValueError(f"noise must be None or an ExplicitNoise, got {type(noise).__name__}")
    loss_every = check_int(recording.loss_every, "loss_every", low=1)
    chunk_steps = check_int(recording.chunk_steps, "chunk_steps", low=1)
    snapshot_steps = np.unique(np.asarray(
        [check_int(k, "snapshot_steps entry", 0, steps) for k in recording.snapshot_steps],
        dtype=np.int64))
    names = data_names(train)
    settings = dict(master_lr=master_lr, steps=steps, keep_prob=keep_prob, width=width,
                    variants=list(variants), seed=seed_record(dynamics.seed),
                    activation=names["activation"], bias=train.bias,
                    output_scale=dynamics.output_scale, loss=names["loss"],
                    batch_size=batch_size, penalty=penalty, loss_every=loss_every,
                    dtype=names["dtype"], data_points=points, dim=dim)
    if outputs > 1:
        settings["outputs"] = outputs
    divergence_factor = check_positive(dynamics.divergence_factor, "divergence_factor")
    penalties = {name: penalty if name == "penalized" else 0.0 for name in variants}
    keep_pre = _check_memory(train, width, batch_size, penalties, snapshot_steps.size,
                             recording.snapshot_neurons, chunk_steps)
    snapshot_neurons = _neuron_subset(recording.snapshot_neurons, width)
    if initial is None:
        initial = init_particles(width, dim, seed=init_seq, bias=train.bias,
                                 dtype=names["dtype"], outputs=outputs)
    output_bound, parameter_bound = divergence_bounds(initial, train.targets,
                                                      divergence_factor)
    if validation is None:
        ftype = train.inputs.dtype
        validation = train._replace(inputs=np.empty((0, dim), ftype),
                                    inputs_t=np.empty((dim, 0), ftype),
                                    targets=np.empty((outputs, 0), ftype))
    rules = {name: Rule(*MASKS[name], keep_prob, master_lr, scale, penalties[name],
                        output_bound, parameter_bound, keep_pre[name])
             for name in variants}
    schedule = Schedule(steps, chunk_steps, recorded_steps(steps, loss_every), snapshot_steps,
                        snapshot_neurons)
    return SimulationPlan(initial, rules, Data(train, validation), noise, schedule, settings,
                          width * batch_size)


def simulation_seconds(plan):
    """Estimated seconds of one core for a planned run (a cost model, excluding compilation):
    :func:`simulation_cost` of the plan's rules, width, steps, batch, data and recorded losses.

    Parameters
    ----------
    plan : SimulationPlan

    Returns
    -------
    float
    """
    train, validation = plan.data.train, plan.data.validation
    (points, dim), outputs = train.inputs.shape, train.outputs
    return simulation_cost(len(plan.rules), plan.initial.shape[0], plan.schedule.steps,
                           plan.settings["batch_size"], dim, outputs,
                           plan.schedule.loss_steps.size, points + validation.targets.shape[1])


def simulation_cost(rules, width, steps, batch_size, dim, outputs, loss_records, loss_points):
    """Estimated seconds of one core for a run of :func:`~meanfield_dropout.engine.simulate`
    (a cost model, excluding compilation), from the sizes alone.

    Per rule, step and neuron a forward and a backward pass over the batch, B(4d + 6K)
    floating-point operations (as :func:`~meanfield_dropout.convergence_plan.cell_cost` for
    K = 1); per recorded loss at most a forward pass over the m training and the validation
    points, (m + m_val)(2d + 2K); operations turned into seconds at
    :data:`~meanfield_dropout.runtime.memory.NOMINAL_RATE` (a fixed rate, not this machine's
    speed).

    Parameters
    ----------
    rules, width, steps, batch_size : int
        Update rules run side by side, n, K steps and B.
    dim, outputs : int
        d (with the bias column, if any) and K outputs.
    loss_records : int
        Recorded losses (:func:`recorded_steps` ``.size``).
    loss_points : int
        m + m_val, the points of one loss record.

    Returns
    -------
    float
    """
    per_neuron = (steps * batch_size * (4 * dim + 6 * outputs)
                  + loss_records * loss_points * (2 * dim + 2 * outputs))
    return rules * width * float(per_neuron) / NOMINAL_RATE


def _check_variants(variants):
    """The variants as a tuple: at least one, each from :data:`VARIANTS`, none repeated."""
    variants = tuple(variants)
    if not variants:
        raise ValueError("variants must name at least one update rule")
    for name in variants:
        check_choice(name, "variant", VARIANTS)
    if len(set(variants)) != len(variants):
        raise ValueError(f"variants must not repeat, got {variants}")
    return variants


def _check_start(width, initial, train):
    """(width n, initial particles or None to draw them) from exactly one of the two."""
    if (width is None) == (initial is None):
        raise ValueError("give exactly one of width (int >= 1) and initial (particle array)")
    if initial is None:
        return check_int(width, "width", low=1), None
    initial = check_particles(initial, train.inputs.shape[1], train.bias, name="initial",
                              dtype=train.inputs.dtype, outputs=train.outputs)
    return initial.shape[0], initial


def _check_memory(train, width, batch_size, penalties, snapshots, snapshot_neurons,
                  chunk_steps):
    """Refuse a run whose states, snapshots and kept pre-activations would not fit.

    Returns {variant: whether its forward pass keeps the pre-activations (or their signs)
    for the backward pass}.
    """
    itemsize = train.inputs.dtype.itemsize
    dim, outputs = train.inputs.shape[1], train.outputs
    per_neuron = particle_dim(dim, train.bias, outputs) * itemsize
    kept = width if snapshot_neurons is None else np.size(snapshot_neurons) \
        if not np.isscalar(snapshot_neurons) else min(width, max(0, int(snapshot_neurons)))
    # what the forward pass keeps for the backward pass: the signs of the pre-activations
    # (one byte each) on the sign path, else the pre-activations themselves
    signs = {name: _sign_path.py_func(train.activation, outputs, penalty)
             for name, penalty in penalties.items()}
    kept_bytes = {name: width * batch_size * (1 if signs[name] else itemsize)
                  for name in penalties}
    keep_pre = {name: kept_bytes[name] <= (
        variants_module.KEEP_SIGN_BYTES if signs[name] else variants_module.KEEP_PRE_BYTES)
        for name in penalties}
    check_memory(per_neuron * len(penalties) * (width + snapshots * kept)
                 + max(b if keep_pre[name] else 0 for name, b in kept_bytes.items())
                 + 2 * chunk_steps * width,
                 f"a run of width {width} with {snapshots} snapshot(s)",
                 "use a smaller width or fewer snapshot_steps or snapshot_neurons")
    return keep_pre


def recorded_steps(steps, loss_every):
    """Steps whose losses are recorded: every ``loss_every``-th step and the last one."""
    return np.unique(np.append(np.arange(0, steps, loss_every), steps))


def _neuron_subset(neurons, width):
    """Indices of the neurons to snapshot (see :func:`simulate`)."""
    if neurons is None:
        return np.arange(width)
    if np.isscalar(neurons):
        return np.arange(check_int(neurons, "snapshot_neurons", 1, width))
    idx = np.asarray(neurons)
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer) \
            or idx.min() < 0 or idx.max() >= width:
        raise ValueError(f"snapshot_neurons must be indices in [0, {width - 1}]")
    return idx.astype(np.int64)
