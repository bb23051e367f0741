"""Finite-width particle engine: (S)GD on a two-layer network under dropout and its variants.

Neuron i moves by the master learning rate τ times Dφ(x_i)ᵀ(…) (GD on the loss with step n·τ
in the mean-field scaling, the authors' ``eta = tau * width``). With masks M_i, M'_i ∈ {0, 1/q}
i.i.d. (keep probability q) the update rules are

=============  ==========================================================================
``gd``         −τ Dφ(x_i)ᵀ (f − y)
``dropout``    −τ M_i Dφ(x_i)ᵀ (s Σ_j M_j φ(x_j) − y)   (one mask forward and backward)
``ram``        −τ M_i Dφ(x_i)ᵀ (f − y)                  (random metric: gradient thinning)
``pn``         −τ Dφ(x_i)ᵀ (s Σ_j M'_j φ(x_j) − y)      (propagation noise)
``pn_ram``     −τ M_i Dφ(x_i)ᵀ (s Σ_j M'_j φ(x_j) − y)  (M' independent of M)
``penalized``  −τ Dφ(x_i)ᵀ (f − y + λ φ(x_i)),  λ = s(1 − q)/q by default
=============  ==========================================================================

where f = s Σ_j φ(x_j) is the unmasked predictor and s the output scale (1/n or 1). For the
square loss f − y is replaced by the loss derivative in general (logistic loss included).

Coupling: all variants of one :func:`simulate` call share the initialisation, the minibatches
and two mask streams. M (the "dropout mask") is dropout's forward-and-backward mask and the
backward mask of ``ram`` and ``pn_ram``; M' (an independent stream) is the forward mask of
``pn`` and ``pn_ram``. This is the coupling of the paper's experiments, under which dropout
and RaM paths converge pathwise.
"""
import dataclasses
import math

import numba
import numpy as np
from numba import njit
from tqdm.auto import tqdm

from . import results
from ._validate import (check_array, check_choice, check_int, check_keep_prob,
                        check_nonnegative, check_positive, seed_sequence)
from .activations import activation_code
from .network import (LOSSES, _backward_update, _forward, _loss_value, _predict, _residual,
                      blas_single_thread, check_particles, output_scale_factor)

VARIANTS = ("gd", "dropout", "ram", "pn", "pn_ram", "penalized")
# (forward mask, backward mask): 0 = none, 1 = dropout mask M, 2 = independent mask M'
_MASKS = {"gd": (0, 0), "dropout": (1, 1), "ram": (0, 1), "pn": (2, 0), "pn_ram": (2, 1),
          "penalized": (0, 0)}
DTYPES = {"float64": np.float64, "float32": np.float32}


class DivergenceError(FloatingPointError):
    """A run produced a non-finite loss or parameter; ``step`` says where.

    Attributes
    ----------
    step : int
        First step whose forward pass (or recorded loss) was not finite.
    variant : str
        The update rule that diverged.
    """

    def __init__(self, step, variant, detail=""):
        self.step = step
        self.variant = variant
        super().__init__(f"variant {variant!r} diverged at step {step}"
                         + (f" ({detail})" if detail else "")
                         + "; try a smaller master_lr")


@njit(cache=True)
def _active_rows(mask_row, out):
    """Indices of the kept neurons of one mask row; returns their count."""
    count = 0
    for i in range(mask_row.shape[0]):
        if mask_row[i]:
            out[count] = i
            count += 1
    return count


@njit(cache=True)
def _run_chunk(X, fwd_kind, bwd_kind, masks, fwd_masks, batches, record, Z, Zt, y,
               val_Zt, val_y, keep_prob, lr, scale, penalty, loss, act, has_bias,
               train_out, val_out, first_step):
    """Advance ``X`` in place by ``masks.shape[0]`` steps of one update rule.

    ``masks``/``fwd_masks`` are the (steps, n) boolean masks M and M'; ``batches`` the
    (steps, B) minibatch indices (zero columns for full batch). Where ``record[k]`` the
    unmasked train (and validation, if ``val_y`` is non-empty) loss at the parameters
    before step k is written to ``train_out[k]``/``val_out[k]``.

    Returns the index of the first step whose forward pass is not finite, or -1.
    """
    n = X.shape[0]
    d = Z.shape[1]
    full_batch = batches.shape[1] == 0
    batch = Z.shape[0] if full_batch else batches.shape[1]
    # the backward pass reuses the forward pre-activations when its neurons are a subset
    recompute = not (fwd_kind == 0 or fwd_kind == bwd_kind)
    pre = np.empty((0 if recompute else n, batch), dtype=X.dtype)
    no_index = np.empty(0, dtype=np.int64)
    f = np.empty(batch, dtype=X.dtype)
    r = np.empty(batch, dtype=X.dtype)
    all_rows = np.arange(n)
    rows_f = np.empty(n, dtype=np.int64)
    rows_b = np.empty(n, dtype=np.int64)
    Zb = Z
    Ztb = Zt
    yb = y
    if not full_batch:
        Zb = np.empty((batch, d), dtype=X.dtype)
        Ztb = np.empty((d, batch), dtype=X.dtype)
        yb = np.empty(batch, dtype=X.dtype)
    inv_q = 1.0 / keep_prob
    for k in range(masks.shape[0]):
        if not full_batch:
            for j in range(batch):
                yb[j] = y[batches[k, j]]
                for c in range(d):
                    Zb[j, c] = Z[batches[k, j], c]
                    Ztb[c, j] = Z[batches[k, j], c]
        count_f, weight_f = n, 1.0
        if fwd_kind == 0:
            rows_f[:] = all_rows
        else:
            count_f = _active_rows(masks[k] if fwd_kind == 1 else fwd_masks[k], rows_f)
            weight_f = inv_q
        count_b, mult_b = n, 1.0
        if bwd_kind == 0:
            rows_b[:] = all_rows
        else:
            count_b = _active_rows(masks[k], rows_b)
            mult_b = inv_q
        _forward(X, rows_f, count_f, weight_f, scale, Ztb, has_bias, act, pre, not recompute, f)
        if not np.all(np.isfinite(f)):
            return first_step + k
        if record[k]:
            if fwd_kind == 0 and full_batch:
                train_out[k] = _loss_value(loss, f, y)
            else:
                train_out[k] = _loss_value(loss, _predict(X, Zt, has_bias, act, scale), y)
            if val_y.shape[0] > 0:
                val_out[k] = _loss_value(loss, _predict(X, val_Zt, has_bias, act, scale), val_y)
            if not math.isfinite(train_out[k]):
                return first_step + k
        _residual(loss, f, yb, r)
        # where neuron rows_b[r] sits in ``pre``: its index (forward over all neurons), its
        # rank (same neurons forward and backward), or nowhere (recompute)
        pre_index = rows_b if fwd_kind == 0 else (no_index if recompute else all_rows)
        _backward_update(X, rows_b, count_b, mult_b, lr, penalty, r, Zb, Ztb, has_bias, act,
                         pre, pre_index)
    return -1


@results.register
@dataclasses.dataclass(eq=False)
class SimulationResult:
    """Losses, snapshots and final particles of the variants of one coupled run.

    Stored by :mod:`meanfield_dropout.results` (:meth:`save`, :meth:`load`).

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

    def save(self, path):
        """Write the result to one ``.npz`` file; returns its path."""
        return results.save(self, path)

    @classmethod
    def load(cls, path):
        """Read a result written by :meth:`save` (ValueError naming a bad file)."""
        return results.load(path, cls)


def init_particles(width, dim, *, seed=0, bias=False, dtype="float64"):
    """Draw the paper's initialisation: a_i ~ N(0, 1), w_i ~ N(0, I/d) (and b_i ~ N(0, 1/d)).

    Parameters
    ----------
    width : int
        Number of neurons n ≥ 1.
    dim : int
        Input dimension d ≥ 1.
    seed : int or numpy.random.SeedSequence
    bias : bool
    dtype : {"float64", "float32"}

    Returns
    -------
    ndarray, shape (width, 1 + d [+ 1])
    """
    width = check_int(width, "width", low=1)
    dim = check_int(dim, "dim", low=1)
    check_choice(dtype, "dtype", DTYPES)
    rng = np.random.default_rng(seed_sequence(seed))
    out = np.empty((width, 1 + dim + int(bias)))
    out[:, 0] = rng.standard_normal(width)
    out[:, 1:] = rng.standard_normal((width, dim + int(bias))) / math.sqrt(dim)
    return out.astype(DTYPES[dtype])


def _record_plan(steps, loss_every):
    """Steps whose losses are recorded: every ``loss_every``-th step and the last one."""
    return np.unique(np.append(np.arange(0, steps, loss_every), steps))


def _chunk_bounds(steps, chunk_steps, snapshot_steps):
    """Chunk edges: multiples of ``chunk_steps`` plus every snapshot step."""
    edges = np.unique(np.concatenate([np.arange(0, steps, chunk_steps), snapshot_steps,
                                      [steps]]))
    return list(zip(edges[:-1], edges[1:]))


def simulate(inputs, targets, *, master_lr, steps, keep_prob=1.0, width=None, initial=None,
             variants=("dropout",), seed=0, activation="relu", bias=False,
             output_scale="mean_field", loss="square", batch_size=None, penalty=None,
             val_inputs=None, val_targets=None, snapshot_steps=(), snapshot_neurons=None,
             loss_every=1, dtype="float64", chunk_steps=32, progress=True):
    """Train a two-layer network with several coupled update rules from one seed.

    Parameters
    ----------
    inputs : ndarray, shape (m, d)
        Training inputs z_j.
    targets : ndarray, shape (m,)
        Targets y_j (labels ±1 for the logistic loss).
    master_lr : float
        Master learning rate τ > 0: neuron i moves by τ·Dφ(x_i)ᵀ(…). With the ``standard``
        output scale this is the ordinary learning rate.
    steps : int
        Number of steps K ≥ 0.
    keep_prob : float
        Keep probability q ∈ (0, 1]; masks take values 0 and 1/q.
    width : int, optional
        Number of neurons n ≥ 1; particles drawn by :func:`init_particles` from ``seed``.
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
    loss : {"square", "logistic"}
        ½ mean (f − y)² or mean log(1 + exp(−y f)).
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
    progress : bool
        Show a ``tqdm`` progress bar.

    Returns
    -------
    SimulationResult

    Raises
    ------
    ValueError
        For an argument outside its allowed range (the message names it).
    DivergenceError
        When a loss or forward pass stops being finite; the message gives the step.
    """
    check_choice(dtype, "dtype", DTYPES)
    ftype = DTYPES[dtype]
    inputs = check_array(inputs, "inputs", 2, dtype=ftype)
    m, dim = inputs.shape
    if m < 1:
        raise ValueError("inputs must hold at least one data point")
    targets = check_array(targets, "targets", 1, dtype=ftype, shape=(m,))
    master_lr = check_positive(master_lr, "master_lr")
    keep_prob = check_keep_prob(keep_prob)
    steps = check_int(steps, "steps", low=0)
    check_choice(loss, "loss", LOSSES)
    act = activation_code(activation)
    variants = tuple(variants)
    if not variants:
        raise ValueError("variants must name at least one update rule")
    for name in variants:
        check_choice(name, "variant", VARIANTS)
    if len(set(variants)) != len(variants):
        raise ValueError(f"variants must not repeat, got {variants}")
    if loss == "logistic" and not np.all(np.abs(targets) == 1):
        raise ValueError("targets must be labels -1 or +1 for the logistic loss")

    init_seq, batch_seq, mask_seq, fwd_seq = seed_sequence(seed).spawn(4)
    if (width is None) == (initial is None):
        raise ValueError("give exactly one of width (int >= 1) and initial (particle array)")
    if initial is None:
        initial = init_particles(width, dim, seed=init_seq, bias=bias, dtype=dtype)
    initial = check_particles(initial, dim, bias, name="initial", dtype=ftype)
    width = initial.shape[0]
    scale = output_scale_factor(output_scale, width)
    if penalty is None:
        penalty = scale * (1.0 - keep_prob) / keep_prob
    penalty = check_nonnegative(penalty, "penalty")
    batch_size = m if batch_size is None else check_int(batch_size, "batch_size", 1, m)
    loss_every = check_int(loss_every, "loss_every", low=1)
    chunk_steps = check_int(chunk_steps, "chunk_steps", low=1)
    snapshot_steps = np.unique(np.asarray(
        [check_int(s, "snapshot_steps entry", 0, steps) for s in snapshot_steps], dtype=np.int64))
    snapshot_neurons = _neuron_subset(snapshot_neurons, width)
    if (val_inputs is None) != (val_targets is None):
        raise ValueError("give both val_inputs and val_targets, or neither")
    if val_inputs is not None:
        val_inputs = check_array(val_inputs, "val_inputs", 2, dtype=ftype, shape=(None, dim))
        val_targets = check_array(val_targets, "val_targets", 1, dtype=ftype,
                                  shape=(val_inputs.shape[0],))
        val_Zt = np.ascontiguousarray(val_inputs.T)
    else:
        val_Zt = np.empty((dim, 0), dtype=ftype)
        val_targets = np.empty(0, dtype=ftype)

    settings = dict(master_lr=master_lr, steps=steps, keep_prob=keep_prob, width=width,
                    variants=list(variants), seed=_seed_repr(seed), activation=activation,
                    bias=bool(bias), output_scale=output_scale, loss=loss,
                    batch_size=batch_size, penalty=penalty, loss_every=loss_every,
                    dtype=dtype, data_points=m, dim=dim)
    Zt = np.ascontiguousarray(inputs.T)
    loss_steps = _record_plan(steps, loss_every)
    states = {name: initial.copy() for name in variants}
    train = {name: np.full(loss_steps.size, np.nan) for name in variants}
    val = {name: np.full(loss_steps.size, np.nan) for name in variants} \
        if val_targets.size else {}
    snaps = {name: np.empty((snapshot_steps.size, snapshot_neurons.size, initial.shape[1]),
                            dtype=ftype) for name in variants}
    need_fwd = any(_MASKS[v][0] == 2 for v in variants)
    batch_rng = np.random.default_rng(batch_seq)
    mask_rng = np.random.default_rng(mask_seq)
    fwd_rng = np.random.default_rng(fwd_seq)
    record_index = {int(s): i for i, s in enumerate(loss_steps)}

    threads = numba.get_num_threads()
    numba.set_num_threads(_threads_for(width * batch_size, threads))
    try:
        with blas_single_thread():
            _run_all(states, variants, steps, chunk_steps, snapshot_steps, snapshot_neurons,
                     snaps, record_index, train, val, keep_prob, master_lr, scale, penalty,
                     batch_size, need_fwd, (batch_rng, mask_rng, fwd_rng), inputs, Zt,
                     targets, val_Zt, val_targets, LOSSES[loss], act, bool(bias), progress)
    finally:
        numba.set_num_threads(threads)
    return SimulationResult(settings, loss_steps, train, val, snapshot_steps,
                            snapshot_neurons, snaps, states)


def _run_all(states, variants, steps, chunk_steps, snapshot_steps, snapshot_neurons, snaps,
             record_index, train, val, keep_prob, master_lr, scale, penalty, batch_size,
             need_fwd, rngs, inputs, Zt, targets, val_Zt, val_targets, loss, act, bias,
             progress):
    """Drive the kernel chunk by chunk for every variant; fills losses and snapshots."""
    batch_rng, mask_rng, fwd_rng = rngs
    width, m = states[variants[0]].shape[0], inputs.shape[0]
    with tqdm(total=steps * len(variants), disable=not progress, unit="step",
              desc=f"simulate n={width}") as bar:
        for start, stop in _chunk_bounds(steps, chunk_steps, snapshot_steps) if steps else []:
            _store_snapshots(states, snaps, snapshot_steps, snapshot_neurons, start)
            count = stop - start
            masks = mask_rng.random((count, width)) < keep_prob
            fwd_masks = (fwd_rng.random((count, width)) < keep_prob) if need_fwd else masks[:0]
            if batch_size < m:
                batches = np.stack([batch_rng.choice(m, batch_size, replace=False)
                                    for _ in range(count)])
            else:
                batches = np.empty((count, 0), dtype=np.int64)
            record = np.array([(start + k) in record_index for k in range(count)])
            for name in variants:
                train_chunk = np.full(count, np.nan)
                val_chunk = np.full(count, np.nan)
                bad = _run_chunk(states[name], *_MASKS[name], masks, fwd_masks, batches,
                                 record, inputs, Zt, targets, val_Zt, val_targets, keep_prob,
                                 master_lr, scale, penalty if name == "penalized" else 0.0,
                                 loss, act, bias, train_chunk, val_chunk, start)
                if bad < 0 and not np.all(np.isfinite(states[name])):
                    bad = stop - 1
                if bad >= 0:
                    raise DivergenceError(bad, name)
                for k in np.flatnonzero(record):
                    train[name][record_index[start + k]] = train_chunk[k]
                    if val:
                        val[name][record_index[start + k]] = val_chunk[k]
                bar.update(count)
    _store_snapshots(states, snaps, snapshot_steps, snapshot_neurons, steps)
    for name in variants:
        train[name][-1] = _loss_value(loss, _predict(states[name], Zt, bias, act, scale),
                                      targets)
        if not math.isfinite(train[name][-1]):
            raise DivergenceError(steps, name)
        if val:
            val[name][-1] = _loss_value(loss, _predict(states[name], val_Zt, bias, act, scale),
                                        val_targets)


def _threads_for(cells, available):
    """Numba threads for a step over ``cells`` = neurons × batch entries.

    One thread per 125 000 cells, at most ``available`` (``numba.get_num_threads()``, which
    a caller lowers with ``numba.set_num_threads``). Below that a step takes well under a
    millisecond and launching a parallel region costs more than a second thread gains.
    Measured on the idle 2-core machine (m = 500, GD + dropout): one thread is as fast as two
    at n = 200 and 2 threads are 1.4× faster at n = 500 and 1.6× at n = 5000. Results do not
    depend on the thread count.
    """
    return max(1, min(available, cells // 125_000))


def _store_snapshots(states, snaps, snapshot_steps, neurons, step):
    """Copy the chosen neurons of every variant if ``step`` is a snapshot step."""
    where = np.flatnonzero(snapshot_steps == step)
    for name, X in states.items():
        for i in where:
            snaps[name][i] = X[neurons]


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


def _seed_repr(seed):
    """A JSON-friendly record of the seed."""
    if isinstance(seed, np.random.SeedSequence):
        return {"entropy": str(seed.entropy), "spawn_key": list(seed.spawn_key)}
    return seed
